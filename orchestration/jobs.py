from dagster import AssetSelection, define_asset_job

from orchestration.partitions import daily_partitions

EVALUATION = AssetSelection.assets("recommendation_evaluation")

# Everything partitioned by landing day: the event log, then the dbt models over it, and
# what is derived from them; the offline evaluation (minutes of tuning) runs weekly instead.
nightly_job = define_asset_job(
    "nightly_job",
    selection=AssetSelection.all() - EVALUATION,
    partitions_def=daily_partitions,
    description="Ingest a landing day into the event log and rebuild what depends on it.",
)

evaluation_job = define_asset_job(
    "evaluation_job",
    selection=EVALUATION,
    partitions_def=daily_partitions,
    description="Offline evaluation of every method on the latest window (history, plot, comparison).",
)

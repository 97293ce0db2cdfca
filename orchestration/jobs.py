from dagster import AssetSelection, define_asset_job

from orchestration.partitions import daily_partitions

# Everything partitioned by landing day: the event log, then the dbt models over it.
nightly_job = define_asset_job(
    "nightly_job",
    selection=AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Ingest a landing day into the event log and rebuild what depends on it.",
)

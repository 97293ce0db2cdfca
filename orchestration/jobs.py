from dagster import AssetSelection, define_asset_job, in_process_executor

from assets.partitions import daily_partitions

EVALUATION = AssetSelection.assets("recommendation_evaluation")
RANKER = AssetSelection.assets("recommendation_ranker")
INTRADAY = AssetSelection.assets("intraday_overlay")

# Everything partitioned by landing day: the event log, then the dbt models over it, and
# what is derived from them; the offline evaluation and the ranker's training (minutes each)
# run weekly instead.
nightly_job = define_asset_job(
    "nightly_job",
    selection=AssetSelection.all() - EVALUATION - RANKER - INTRADAY,
    partitions_def=daily_partitions,
    description="Ingest a landing day into the event log and rebuild what depends on it.",
    # One process for the whole run, as `shopguide run` does: the steps share one DuckDB file
    # (one writer at a time), and a subprocess per step costs seconds of imports each. Runs the
    # daemon launched with the default multiprocess executor took 8 minutes for one small
    # landing day on this project's 2 cores, against 1.3 in one process.
    executor_def=in_process_executor,
)

evaluation_job = define_asset_job(
    "evaluation_job",
    selection=EVALUATION,
    partitions_def=daily_partitions,
    description="Offline evaluation of every method on the latest window (history, plot, comparison).",
)

ranker_training_job = define_asset_job(
    "ranker_training_job",
    selection=RANKER,
    partitions_def=daily_partitions,
    description="Retrain the LightGBM ranker on labels from the event log; the nightly run picks it up.",
)

# Not partitioned: one refresh covers every landing file since the current snapshot's day.
intraday_job = define_asset_job(
    "intraday_job",
    selection=INTRADAY,
    description="Refresh the lists of the shoppers with new events today (an overlay on the snapshot).",
    executor_def=in_process_executor,  # seconds count: the goal is a changed list within a minute
)

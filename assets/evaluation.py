"""The offline evaluation as an asset: every method on a time split of the event log, each
run kept in a history table, the comparison and a plot in the metadata and reports folder."""

from datetime import datetime, time, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.dbt_args import landing_window
from assets.partitions import daily_partitions
from assets.resources import EmbeddingEncoder, RecommenderSettings, ShopguideHome
from core.errors import NotEnoughHistory
from evaluation.data import load_shop_data
from evaluation.history import best_baseline_ratio, markdown, read_history, record, write_reports
from evaluation.protocol import evaluate

EVALUATION_WINDOW_DAYS = 30


@asset(
    deps=[AssetKey(n) for n in ("dim_products", "dim_users", "fct_events", "product_embeddings")],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="recommendations",
    owners=["team:ml"],
    kinds={"duckdb", "pytorch"},
    description=(
        "Offline evaluation on a time split ending with the run's last landing day: popularity, "
        "item-kNN, EASE, ALS (implicit), content-only, buy-again, TIFU-KNN and shopguide's ranker, "
        "tuned on a validation "
        f"window and scored on the last {EVALUATION_WINDOW_DAYS} days with full-catalog ranking. Each "
        "run is appended to recommendation_evaluation_history; the table and an NDCG plot go to "
        "SHOPGUIDE_HOME/reports/evaluation. Not in the nightly job: it has its own weekly schedule."
    ),
)
def recommendation_evaluation(
    context: AssetExecutionContext,
    shopguide: ShopguideHome,
    encoder: EmbeddingEncoder,
    recommender: RecommenderSettings,
) -> MaterializeResult:
    paths = shopguide.paths()
    _, last = landing_window(context.partition_time_window.start, context.partition_time_window.end)
    cutoff = last + timedelta(days=1) - timedelta(days=EVALUATION_WINDOW_DAYS)
    data = load_shop_data(paths, before=datetime.combine(last + timedelta(days=1), time()))
    try:
        result = evaluate(
            data,
            cutoff,
            EVALUATION_WINDOW_DAYS,
            base_config=recommender.config(set(), encoder.half_life_days),
            ranker_settings=recommender.ranker_settings(),
            log=context.log.info,
        )
    except NotEnoughHistory as not_enough:
        # A young shop has too little history for a split: say so instead of failing the run.
        # Only that: any other error is a bug and fails the run.
        context.log.warning(f"evaluation skipped: {not_enough}")
        return MaterializeResult(metadata={"skipped": str(not_enough)})
    rows = record(paths.warehouse, result, context.run_id)
    written = write_reports(paths.reports / "evaluation", result, read_history(paths.warehouse))
    best, ratio = best_baseline_ratio(result, "repurchase")
    metadata = {
        "cutoff": result.split["cutoff"],
        "test_users": result.split["test_users"],
        "history_rows": rows,
        "ranker_vs_best_baseline_ndcg10": MetadataValue.float(ratio) if ratio is not None else "n/a",
        "best_baseline": best,
        "comparison": MetadataValue.md(markdown(result)),
        "report": MetadataValue.path(str(written["markdown"])),
        "seconds": result.seconds,
    }
    if "plot" in written:
        metadata["ndcg_history_plot"] = MetadataValue.path(str(written["plot"]))
    return MaterializeResult(metadata=metadata)

"""The learned ranker, retrained weekly on labels from the event log (its own job and
schedule); the nightly `published_recommendations` uses the newest model trained with the
same settings, and trains one itself only when there is none or it is too old."""

from datetime import datetime, time, timedelta

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from assets.dbt_args import landing_window
from assets.partitions import daily_partitions
from assets.resources import EmbeddingEncoder, RecommenderSettings, ShopguideHome
from evaluation.data import load_shop_data
from recommendations.model_store import model_root, train_and_save


@asset(
    deps=[AssetKey(n) for n in ("dim_products", "dim_users", "fct_events", "product_embeddings")],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="recommendations",
    owners=["team:ml"],
    kinds={"lightgbm"},
    description=(
        "LightGBM LambdaRank over the candidate generators, trained on rolling cut-offs before the "
        "run's last landing day (features before each cut-off, labels = what was bought after it). "
        "Saved, versioned, under SHOPGUIDE_HOME/models/ranker/<model_id>; weekly, in ranker_training_job."
    ),
)
def recommendation_ranker(
    context: AssetExecutionContext,
    shopguide: ShopguideHome,
    encoder: EmbeddingEncoder,
    recommender: RecommenderSettings,
) -> MaterializeResult:
    paths = shopguide.paths()
    _, last = landing_window(context.partition_time_window.start, context.partition_time_window.end)
    as_of = datetime.combine(last + timedelta(days=1), time())
    data = load_shop_data(paths, before=as_of)
    config = recommender.config(set(), encoder.half_life_days)
    model = train_and_save(data, as_of, config, recommender.ranker_settings(), model_root(paths.home))
    context.log.info(f"ranker {model.model_id}: {model.info}")
    return MaterializeResult(
        metadata={
            "model_id": model.model_id,
            "trained_as_of": as_of.isoformat(),
            "cold_start_list": model.cold_start["list"],
            "training": MetadataValue.json(model.info),
            "cold_start_scores": MetadataValue.json(model.cold_start.get("scores", {})),
        }
    )

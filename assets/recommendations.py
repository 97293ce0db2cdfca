"""The nightly recommendation tables, gated and published as an immutable snapshot."""

import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DagsterLogManager,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.dbt_args import landing_window
from assets.partitions import daily_partitions
from assets.resources import EmbeddingEncoder, RecommenderSettings, ShopguideHome
from core.memory import release_free_memory
from core.settings import Paths
from embeddings.store import PRODUCT_TABLE, USER_TABLE, connect, open_table, read_table
from evaluation.champion import Candidate, Verdict, candidate_from_manifest, challenge
from evaluation.data import load_shop_data
from quality.checks import record as record_expectations
from quality.checks import window_key
from recommendations.exclusions import load_exclusions
from recommendations.inputs import VectorsById, build_inputs
from recommendations.model_store import model_for_run, model_root
from recommendations.shop import ShopData
from recommendations.tables import recommendation_tables
from recommendations.user_lists import read_user_table
from serving import PublishBlocked, serving_root
from serving.gate import GateContext, GateResult, evaluate_gate
from serving.publish import current_snapshot, publish_tables
from serving.snapshots import read_manifest


@asset(
    deps=[
        AssetKey(n)
        for n in ("dim_products", "dim_users", "fct_events", "product_embeddings", "user_embeddings")
    ],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="recommendations",
    owners=["team:ml"],
    kinds={"parquet", "pytorch"},
    check_specs=[
        AssetCheckSpec(
            "quality_gate",
            asset="published_recommendations",
            blocking=True,
            description="Coverage, list lengths, duplicates, leaks, fallbacks, overlap.",
        ),
        AssetCheckSpec(
            "champion_challenger",
            asset="published_recommendations",
            blocking=True,
            description=(
                "The candidate configuration's NDCG@10 on the latest window, against the published "
                "version's; a drop beyond the tolerance blocks the publish unless overridden."
            ),
        ),
    ],
    description=(
        "Per-user top-K (the learned ranker over the candidate generators, with a reason on every "
        "row), similar "
        "products, popular and trending lists, with cold-start fallbacks and business filters. Written "
        "as an immutable snapshot under SHOPGUIDE_HOME/serving; published (or canaried) only when the "
        "quality gate passes, otherwise the storefront keeps the current version."
    ),
)
def published_recommendations(
    context: AssetExecutionContext,
    shopguide: ShopguideHome,
    encoder: EmbeddingEncoder,
    recommender: RecommenderSettings,
) -> MaterializeResult:
    paths = shopguide.paths()
    first, last = landing_window(context.partition_time_window.start, context.partition_time_window.end)
    step = build_and_publish(paths, recommender, encoder.half_life_days, last, context.log)
    # The gate's great-expectations results join the data-quality history and Data Docs.
    record_expectations(paths, step.gate.expectations, context.run.run_id, window_key(first, last))
    return _result(
        step.snapshot_id,
        step.gate,
        step.published,
        step.verdict,
        step.tables,
        recommender.canary_percent,
        step.excluded,
        step.model_id,
    )


@dataclass
class PublishStep:
    """What one night's tables came to: the snapshot (None when champion/challenger blocked
    it), its gate, whether shoppers see it, and what the asset reports."""

    snapshot_id: str | None
    gate: GateResult
    published: bool
    verdict: Verdict
    tables: dict[str, pl.DataFrame]
    excluded: int
    model_id: str


def build_and_publish(
    paths: Paths,
    recommender: RecommenderSettings,
    half_life_days: float,
    last: date,
    log: logging.Logger | DagsterLogManager,
    root: Path | None = None,
) -> PublishStep:
    """The step without Dagster: tonight's tables from everything up to the end of landing
    day `last`, champion/challenger, the gate, and the snapshot written to `root` (default
    the home's serving folder) and published or canaried when both pass."""
    as_of = datetime.combine(last + timedelta(days=1), time())  # end of the last landing day, UTC
    data = load_shop_data(paths, before=as_of)
    exclusions = load_exclusions(paths.home)
    config = recommender.config(set(exclusions), half_life_days)
    # Training and champion/challenger first: neither reads the inputs, so a night that trains
    # does not hold the shoppers' vectors and the inputs (3 GB at a million shoppers) meanwhile.
    candidate = Candidate(config, recommender.ranker_settings())
    model, trained_now = model_for_run(
        data, as_of, config, candidate.ranker, model_root(paths.home), recommender.ranker_max_model_age_days
    )
    log.info(
        f"ranker {model.model_id} ({'trained in this run' if trained_now else 'saved'}; "
        f"cold start: {model.cold_start['list']})"
    )
    root = root or serving_root(paths)
    verdict = _challenge(root, data, candidate, recommender, last)
    (log.info if verdict.passed else log.error)(f"champion/challenger: {verdict.message}")
    release_free_memory()  # what training freed (0.8 GiB more resident at 10M events than without)
    db = connect(paths.lancedb_uri)
    # The shoppers' vectors as one matrix at once: the frame LanceDB gave (a million 384-float
    # lists, 1.5 GB) is not kept for the rest of the step.
    user_vectors = read_table(db, USER_TABLE)
    if user_vectors is None:
        user_vectors = pl.DataFrame(schema={"user_id": pl.Utf8, "vector": pl.List(pl.Float32)})
    user_vectors = VectorsById.from_frame(user_vectors, "user_id")
    inputs = build_inputs(
        data.products,
        data.product_vectors,
        data.users,
        user_vectors,
        data.events,
        as_of,
        set(config.excluded_product_ids),
        config.history_half_life_days,
        config.popularity_half_life_days,
        data.interaction_weights,
    )
    del user_vectors  # inputs.user_matrix holds them, in the shoppers' order
    log.info(f"inputs built: {inputs.users.height:,} shoppers, {inputs.products.height:,} products")
    purchased = None
    if not config.allow_repurchase:
        purchased = (
            data.events.filter(pl.col("event_type") == "purchase", pl.col("user_id").is_not_null())
            .select("user_id", "product_id")
            .unique()
        )
    gate_context = GateContext(
        active_user_ids=data.users["user_id"],
        excluded_product_ids=inputs.products.filter(~pl.Series(inputs.recommendable))["product_id"],
        excluded_pairs=purchased,
    )
    vectors = data.product_vectors
    fingerprint = vectors["model_fingerprint"][0] if vectors.height else None
    # The event log (10M rows at 10M events) is not needed past training and champion/
    # challenger, nor the inputs past the tables: neither is held while the tables are
    # gated and written.
    del data, vectors
    release_free_memory()
    # The per-user table (3 GB at a million shoppers) goes to disk block by block and is read
    # back only once the inputs and fitted generators are let go: never both held at once.
    with tempfile.TemporaryDirectory(prefix="shopguide-user-lists-") as spill:
        tables = recommendation_tables(inputs, config, model, spill=Path(spill))
        del inputs
        release_free_memory()
        tables = {"user_recommendations": read_user_table(Path(spill)), **tables}
    log.info(f"tables built: {tables['user_recommendations'].height:,} shopper rows; gating them")
    manifest = {
        "champion_challenger": verdict.to_dict(),
        "partition_date": last.isoformat(),
        "embedding_version": open_table(db, PRODUCT_TABLE).version,
        "model_fingerprint": fingerprint,
        "config": config.model_dump(mode="json"),
        "ranker_model_id": model.model_id,
        "ranker_settings": asdict(candidate.ranker),
        "ranker_cold_start": model.cold_start["list"],
    }
    if not verdict.passed:
        # Nothing is written: shoppers keep the published version; the gate is still computed
        # so the UI shows whether the candidate would have passed it.
        gate = evaluate_gate(tables, gate_context, recommender.gate_thresholds())
        return PublishStep(None, gate, False, verdict, tables, len(exclusions), model.model_id)
    try:
        outcome = publish_tables(
            root,
            tables,
            manifest,
            gate_context,
            thresholds=recommender.gate_thresholds(),
            canary_percent=recommender.canary_percent or None,
        )
        snapshot_id, gate, published = outcome.snapshot_id, outcome.gate, True
    except PublishBlocked as blocked:
        # The candidate stays on disk for inspection; shoppers keep the current version.
        log.error(str(blocked))
        snapshot_id, gate, published = blocked.snapshot_id, blocked.gate, False
    return PublishStep(snapshot_id, gate, published, verdict, tables, len(exclusions), model.model_id)


def _challenge(root, data: ShopData, candidate: Candidate, recommender, last) -> Verdict:
    champion_id = current_snapshot(root)
    champion = None
    if champion_id:
        manifest = read_manifest(root, champion_id)
        champion = candidate_from_manifest(manifest.config, manifest.extra.get("ranker_settings"))
    return challenge(
        data,
        candidate,
        champion,
        champion_id,
        last,
        window_days=recommender.champion_window_days,
        tolerance=recommender.champion_tolerance,
        override=recommender.override_champion_gate,
    )


def _result(
    snapshot_id, gate, published, verdict, tables, canary_percent, excluded, model_id
) -> MaterializeResult:
    recs = tables["user_recommendations"]
    # Streamed: in memory, polars' n_unique over a million shoppers' 28M rows took 4.2 GiB more
    # (the backfill's peak at 10M events); streamed, 0.05 GiB, the same counts.
    by_source = dict(
        recs.lazy()
        .group_by("source")
        .agg(pl.col("user_id").n_unique())
        .collect(engine="streaming")
        .iter_rows()
    )
    return MaterializeResult(
        metadata={
            "snapshot_id": snapshot_id or "(none: blocked by champion/challenger)",
            "ranker_model_id": model_id,
            "published": published,
            "canary_percent": canary_percent,
            "dagster/row_count": recs.height,
            "users_by_source": MetadataValue.json(by_source),
            "similar_products_rows": tables["similar_products"].height,
            "popular_products_rows": tables["popular_products"].height,
            "excluded_by_rule": excluded,
            "champion_challenger": verdict.message,
            "gate": MetadataValue.md(f"```\n{gate.summary()}\n```"),
        },
        check_results=[
            AssetCheckResult(
                check_name="quality_gate",
                passed=gate.passed,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "snapshot_id": snapshot_id or "(none)",
                    "summary": MetadataValue.md(f"```\n{gate.summary()}\n```"),
                },
            ),
            AssetCheckResult(
                check_name="champion_challenger",
                passed=verdict.passed,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "message": verdict.message,
                    "candidate_ndcg_at_10": verdict.candidate_ndcg,
                    "champion_ndcg_at_10": verdict.champion_ndcg,
                    "champion_snapshot": verdict.champion_snapshot or "(none)",
                    "overridden": verdict.overridden,
                },
            ),
        ],
    )

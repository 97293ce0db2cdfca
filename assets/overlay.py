"""The intraday overlay as a Dagster asset: a thin wrapper over assets.intraday (the plain,
unit-tested function), run by `intraday_job` when `intraday_sensor` sees new landing files."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MaterializeResult, asset

from assets.intraday import refresh_active_shoppers
from assets.resources import RecommenderSettings, ShopguideHome


@asset(
    deps=[AssetKey("published_recommendations")],
    group_name="recommendations",
    owners=["team:ml"],
    kinds={"parquet"},
    check_specs=[
        AssetCheckSpec(
            "overlay_gate",
            asset="intraday_overlay",
            blocking=True,
            description="The publish gate's checks on the refreshed shoppers' rows only.",
        )
    ],
    description=(
        "Intraday lists of the shoppers with new events since the current snapshot's landing day, "
        "served on top of it (SHOPGUIDE_HOME/serving/overlays): the new landing files are appended to "
        "the event log, and only those shoppers' vectors and lists are recomputed with the snapshot's "
        "ranker and product vectors. The nightly publish and a rollback drop the overlay."
    ),
)
def intraday_overlay(shopguide: ShopguideHome, recommender: RecommenderSettings) -> MaterializeResult:
    result = refresh_active_shoppers(shopguide.paths(), recommender.gate_thresholds())
    gate = result.gate
    return MaterializeResult(
        metadata={
            "status": result.status,
            "snapshot_id": result.snapshot_id,
            "overlay_id": result.overlay_id or "(none)",
            "new_files": len(result.new_files),
            "new_events": result.new_events,
            "refreshed_shoppers": result.refreshed,
            "overlaid_shoppers": result.overlaid,
            **{f"seconds_{step}": value for step, value in result.seconds.items()},
        },
        check_results=[
            AssetCheckResult(
                check_name="overlay_gate",
                passed=gate is None or gate.passed,
                severity=AssetCheckSeverity.ERROR,
                metadata={"summary": gate.summary() if gate else "no shopper refreshed: nothing to gate"},
            )
        ],
    )

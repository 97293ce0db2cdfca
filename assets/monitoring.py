"""The monitoring report: one HTML page, a Prometheus `.prom` file and the alerts table."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import daily_partitions
from assets.resources import ShopguideHome
from reports.alerts import CRITICAL, WARNING, alerts_markdown
from reports.build import build_report

ASSET = "monitoring_report"


def _asset_keys(context: AssetExecutionContext) -> list[str] | None:
    """Every asset the job can materialise but this one (the nightly job: all of them), so the
    freshness plot also shows an asset that was never materialised. None (every asset the
    instance knows) when the report is materialised on its own."""
    keys = context.job_def.asset_layer.asset_graph.materializable_asset_keys
    return sorted(k.to_user_string() for k in keys if k.to_user_string() != ASSET) or None


@asset(
    # After the readout, so the report shows today's experiment figures.
    deps=[AssetKey("published_recommendations"), AssetKey("experiment_readout")],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="monitoring",
    owners=["team:data-platform"],
    kinds={"html", "prometheus"},
    check_specs=[
        AssetCheckSpec(
            "no_alerts",
            asset=ASSET,
            blocking=False,
            description=(
                "Warns when the report raised alerts (stale data, volume anomalies, drift, failed "
                "data-quality expectations, an unpublished snapshot); the metadata lists them."
            ),
        )
    ],
    description=(
        "Freshness, event volume with anomalies, event-mix drift, unknown products, embedding drift, "
        "recommendation health per snapshot, data-quality pass rates and step durations: one "
        "self-contained HTML page under SHOPGUIDE_HOME/reports/monitoring, the same figures as "
        "Prometheus metrics (shopguide.prom), and the alerts in the warehouse table monitoring_alerts."
    ),
)
def monitoring_report(context: AssetExecutionContext, shopguide: ShopguideHome) -> MaterializeResult:
    outcome = build_report(
        shopguide.paths(),
        now=datetime.now(UTC),
        run_id=context.run_id,
        instance=context.instance,
        asset_keys=_asset_keys(context),
    )
    for alert in outcome.alerts:
        log = context.log.error if alert.severity == CRITICAL else context.log.warning
        log(f"[{alert.source}] {alert.subject}: {alert.message}")
    critical = sum(a.severity == CRITICAL for a in outcome.alerts)
    warning = sum(a.severity == WARNING for a in outcome.alerts)
    table = MetadataValue.md(alerts_markdown(outcome.alerts))
    figures = {}
    if not outcome.data.recommendations.is_empty():
        newest = outcome.data.recommendations.row(-1, named=True)
        figures = {
            f"recommendations_{name}": float(newest[name])
            for name in ("user_coverage", "catalog_coverage", "fallback_share", "gini", "diversity", "churn")
            if newest[name] is not None
        }
    return MaterializeResult(
        metadata={
            "report": MetadataValue.path(str(outcome.html_path)),
            "prometheus_file": MetadataValue.path(str(outcome.prom_path)),
            "alerts_critical": critical,
            "alerts_warning": warning,
            "alerts": table,
            "build_seconds": round(outcome.seconds, 2),
            **figures,
        },
        check_results=[
            AssetCheckResult(
                check_name="no_alerts",
                passed=not outcome.alerts,
                severity=AssetCheckSeverity.WARN,
                metadata={"critical": critical, "warning": warning, "alerts": table},
            )
        ],
    )

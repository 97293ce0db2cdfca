"""great-expectations suites as Dagster asset checks (quality/ holds the logic).

Two checks per guarded asset, from one validation:

- `gx_expectations`: the suite's error-level rules; blocking, severity ERROR. When it fails,
  Dagster does not run anything downstream of the asset in that run: a bad raw_events
  partition stops dbt, the vectors and the publish, so the storefront keeps the current
  snapshot.
- `gx_warnings`: the warn-level rules; severity WARN, never blocking, visible in the UI.

Each check writes every verdict to the warehouse table `data_quality_results` and
re-renders GX Data Docs under SHOPGUIDE_HOME/reports/data_docs/. The failing expectations
and what GX observed are in the check's metadata as a table. The recommendation tables are
checked by the publish gate (serving/gate.py), which runs their suites before publishing.

dbt's own tests stay dbt tests; dagster-dbt turns them into asset checks on the models.

(No `from __future__ import annotations` here: Dagster reads the `context` annotation of a
check function at definition time and refuses a string.)
"""

from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)

from assets.dbt_args import landing_window
from assets.resources import ShopguideHome
from core.errors import NotReady

ERRORS = "gx_expectations"
WARNINGS = "gx_warnings"
MAX_TABLE_ROWS = 40


def _specs(asset: str, what: str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            ERRORS,
            asset=asset,
            blocking=True,
            description=f"great-expectations error-level rules on {what} (quality/suites.py). "
            "A failure blocks everything downstream, the publish included.",
        ),
        AssetCheckSpec(
            WARNINGS,
            asset=asset,
            blocking=False,
            description=f"great-expectations warn-level rules on {what}: shown, never blocking.",
        ),
    ]


def checked_days(context: AssetCheckExecutionContext, warehouse) -> tuple[date, date]:
    """The landing days a check looks at.

    Inside a run of the partitioned nightly job the check's context carries the run's
    partition, or its whole range (a backfill is one run with BackfillPolicy.single_run(),
    tagged with the range): exactly the days the asset just (re)built, so a check never
    judges a day the run did not touch. Executed on its own (the UI's "Execute check"),
    there is no partition: it checks the latest landing day the event log recorded.
    """
    if context.has_partition_key or context.has_partition_key_range:
        window = context.partition_time_window
        return landing_window(window.start, window.end)
    from warehouse.store import connect

    with connect(warehouse, read_only=True) as con:
        latest = con.execute("select max(_partition_date) from ingestion_log").fetchall()[0][0]
    if latest is None:
        raise NotReady("Nothing ingested yet: materialise raw_events for a landing day first.")
    return latest, latest


def _table(outcomes) -> str:
    lines = ["| suite | severity | expectation | observed |", "|---|---|---|---|"]
    for o in outcomes[:MAX_TABLE_ROWS]:
        observed = o.observed_value.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {o.suite} | {o.severity} | `{o.expectation}` | {observed} |")
    if len(outcomes) > MAX_TABLE_ROWS:
        lines.append(f"| … | | {len(outcomes) - MAX_TABLE_ROWS} more | |")
    return "\n".join(lines)


def _results(asset: str, runs, partition_key: str, index) -> list[AssetCheckResult]:
    from quality.suites import ERROR, WARN

    results = []
    for name, severity, dagster_severity in (
        (ERRORS, ERROR, AssetCheckSeverity.ERROR),
        (WARNINGS, WARN, AssetCheckSeverity.WARN),
    ):
        judged = [o for run in runs for o in run.outcomes if o.severity == severity]
        failed = [o for o in judged if not o.success]
        metadata = {
            "partition_key": partition_key,
            "suites": ", ".join(run.suite for run in runs),
            "rows_checked": sum(run.rows_checked for run in runs),
            "expectations": len(judged),
            "failed": len(failed),
            "data_docs": MetadataValue.path(str(index)),
        }
        if failed:
            metadata["failures"] = MetadataValue.md(_table(failed))
        results.append(
            AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=not failed,
                severity=dagster_severity,
                metadata=metadata,
            )
        )
    return results


def _finish(context: AssetCheckExecutionContext, shopguide: ShopguideHome, asset: str, runs, key: str):
    from quality.checks import record

    index = record(shopguide.paths(), runs, context.op_execution_context.run_id, key)
    for run in runs:
        for o in run.failures():
            log = context.log.error if o.severity == "error" else context.log.warning
            log(f"{run.suite}: {o.expectation} failed ({o.severity}): {o.observed_value}")
    return _results(asset, runs, key, index)


@multi_asset_check(specs=_specs("raw_events", "the landing days' events and their volume"))
def raw_events_expectations(context: AssetCheckExecutionContext, shopguide: ShopguideHome):
    from quality.checks import check_raw_events, window_key

    paths = shopguide.paths()
    first, last = checked_days(context, paths.warehouse)
    runs = check_raw_events(paths.warehouse, first, last)
    yield from _finish(context, shopguide, "raw_events", runs, window_key(first, last))


@multi_asset_check(specs=_specs("fct_events", "the events landed in the run's days"))
def fct_events_expectations(context: AssetCheckExecutionContext, shopguide: ShopguideHome):
    from quality.checks import check_events, window_key

    paths = shopguide.paths()
    first, last = checked_days(context, paths.warehouse)
    runs = check_events(paths.warehouse, first, last)
    yield from _finish(context, shopguide, "fct_events", runs, window_key(first, last))


@multi_asset_check(specs=_specs("dim_products", "the current catalog"))
def dim_products_expectations(context: AssetCheckExecutionContext, shopguide: ShopguideHome):
    from quality.checks import check_products, window_key

    paths = shopguide.paths()
    first, last = checked_days(context, paths.warehouse)
    runs = check_products(paths.warehouse)
    yield from _finish(context, shopguide, "dim_products", runs, window_key(first, last))


@multi_asset_check(specs=_specs("product_embeddings", "the product vectors"))
def product_embeddings_expectations(context: AssetCheckExecutionContext, shopguide: ShopguideHome):
    from quality.checks import check_embeddings, window_key

    paths = shopguide.paths()
    first, last = checked_days(context, paths.warehouse)
    runs = check_embeddings(paths.lancedb_uri)
    yield from _finish(context, shopguide, "product_embeddings", runs, window_key(first, last))


quality_checks = [
    raw_events_expectations,
    fct_events_expectations,
    dim_products_expectations,
    product_embeddings_expectations,
]

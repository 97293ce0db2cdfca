"""`raw_events`: a landing day → the DuckDB event log, every line accounted for."""

import time
from collections import Counter
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import daily_partitions
from assets.resources import ShopguideHome
from warehouse.ingest import ingest_landing_days
from warehouse.store import connect, partition_counts, replace_partition


def days_in(context: AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=n) for n in range((end - first).days)]


@asset(
    partitions_def=daily_partitions,
    # One run covers a whole backfill range: hundreds of per-day runs would spend
    # minutes on process start-up before any work (../shared/STACK.md).
    backfill_policy=BackfillPolicy.single_run(),
    group_name="event_log",
    owners=["team:data-engineering"],
    kinds={"duckdb", "python"},
    check_specs=[
        AssetCheckSpec(
            "lines_reconcile",
            asset="raw_events",
            description="Lines read = accepted + quarantined, as stored in the warehouse.",
            blocking=True,
        )
    ],
    description=(
        "The append-only event log: every landing line of the partition's landing day(s), "
        "validated against the envelope (docs/events.md). Accepted lines go to `raw_events` "
        "with lineage columns; rejected lines go to `quarantined_events` with a reason. "
        "Re-running a partition replaces exactly that day."
    ),
)
def raw_events(context: AssetExecutionContext, shopguide: ShopguideHome) -> MaterializeResult:
    paths = shopguide.paths()
    started = time.perf_counter()
    totals: Counter = Counter()
    reasons: Counter = Counter()
    mismatches: list[str] = []
    per_day: list[str] = []
    with connect(paths.warehouse) as con:
        for day, result in ingest_landing_days(paths.landing, days_in(context)):
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
            stored = partition_counts(con, day)
            if not (stored["lines_read"] == result.lines_read == stored["accepted"] + stored["quarantined"]):
                mismatches.append(f"{day}: read {result.lines_read}, stored {stored}")
            totals.update(
                files=len(result.files),
                lines_read=result.lines_read,
                accepted=len(result.accepted),
                quarantined=len(result.quarantined),
            )
            reasons.update(result.reasons())
            if result.files:
                per_day.append(
                    f"| {day} | {len(result.files)} | {result.lines_read} | "
                    f"{len(result.accepted)} | {len(result.quarantined)} |"
                )
    elapsed = time.perf_counter() - started
    if totals["files"] == 0:
        context.log.warning(f"No landing files for {context.partition_key_range}: nothing ingested.")
    table = "| landing day | files | lines | accepted | quarantined |\n|---|---|---|---|---|\n"
    return MaterializeResult(
        metadata={
            "dagster/row_count": totals["accepted"],
            "files": totals["files"],
            "lines_read": totals["lines_read"],
            "accepted": totals["accepted"],
            "quarantined": totals["quarantined"],
            "quarantine_reasons": MetadataValue.json(dict(sorted(reasons.items()))),
            "rows_per_second": round(totals["lines_read"] / elapsed) if elapsed else 0,
            "duration_seconds": round(elapsed, 2),
            "days": MetadataValue.md(table + "\n".join(per_day[:60])),
        },
        check_results=[
            AssetCheckResult(
                check_name="lines_reconcile",
                passed=not mismatches,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "lines_read": totals["lines_read"],
                    "accepted_plus_quarantined": totals["accepted"] + totals["quarantined"],
                    "mismatches": MetadataValue.json(mismatches[:20]),
                },
            )
        ],
    )

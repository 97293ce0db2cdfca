"""What the Dagster instance knows: last materialisations, step timings, failed checks.

Read through `DagsterInstance` only (the asset passes `context.instance`, the command line
`DagsterInstance.get()`), so it works the same on SQLite or a Postgres instance.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

RUNS = 30  # the last N Dagster runs
FRESHNESS_SCHEMA = {
    "name": pl.String,
    "kind": pl.String,
    "at": pl.Datetime("us", "UTC"),
    "age_seconds": pl.Float64,
}
PIPELINE_SCHEMA = {
    "run_id": pl.String,
    "job": pl.String,
    "status": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "run_seconds": pl.Float64,
    "step": pl.String,
    "step_status": pl.String,
    "duration_s": pl.Float64,
}


def collect_freshness(instance, asset_keys: list[str] | None, now: datetime) -> pl.DataFrame:
    """Last materialisation per asset (every asset in `asset_keys`, materialised or not)."""
    from dagster import AssetKey

    if asset_keys is None:
        keys = [k for k in instance.get_asset_keys() if k.to_user_string() != "monitoring_report"]
    else:
        keys = [AssetKey.from_user_string(k) for k in asset_keys]
    records = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records(list(keys))}
    rows = []
    for key in keys:
        entry = records.get(key)
        last = entry.last_materialization_record if entry else None
        at = datetime.fromtimestamp(last.timestamp, UTC) if last else None
        rows.append(
            {
                "name": key.to_user_string(),
                "kind": "asset",
                "at": at,
                "age_seconds": (now - at).total_seconds() if at else None,
            }
        )
    return pl.DataFrame(rows, schema=FRESHNESS_SCHEMA).sort("name")


def step_timings(instance, run_id: str) -> dict[str, dict]:
    """step_key -> start, end (None while running), status, from the run's step events only.

    Cheaper than `get_run_step_stats`, which also deserialises every materialisation of the
    run (thousands in a ranged backfill: seconds, for timings we do not use).
    """
    from dagster import DagsterEventType

    kinds = {
        DagsterEventType.STEP_START: None,
        DagsterEventType.STEP_SUCCESS: "SUCCESS",
        DagsterEventType.STEP_FAILURE: "FAILURE",
    }
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(run_id, of_type=set(kinds)):
        if entry.step_key is None or entry.dagster_event is None:
            continue
        step = steps.setdefault(entry.step_key, {"start": None, "end": None, "status": None})
        status = kinds[entry.dagster_event.event_type]
        if status is None:
            step["start"] = entry.timestamp if step["start"] is None else min(step["start"], entry.timestamp)
        else:
            step["end"], step["status"] = entry.timestamp, status
    return steps


def collect_pipeline(instance, limit: int = RUNS) -> pl.DataFrame:
    """Step durations of the last `limit` runs (finished steps only), oldest run first."""
    rows = []
    for record in reversed(instance.get_run_records(limit=limit)):
        run = record.dagster_run
        started = datetime.fromtimestamp(record.start_time, UTC) if record.start_time else None
        finished = record.end_time and record.start_time
        for step_key, step in step_timings(instance, run.run_id).items():
            if step["start"] is None or step["end"] is None:
                continue
            rows.append(
                {
                    "run_id": run.run_id,
                    "job": run.job_name,
                    "status": run.status.value,
                    "started_at": started,
                    "run_seconds": record.end_time - record.start_time if finished else None,
                    "step": step_key,
                    "step_status": step["status"],
                    "duration_s": step["end"] - step["start"],
                }
            )
    return pl.DataFrame(rows, schema=PIPELINE_SCHEMA)


# Checks whose failures already have their own, more detailed alerts: the publish gate
# (recommendations) and the great-expectations suites (data_quality_results).
DETAILED_ELSEWHERE = ("published_recommendations:quality_gate", ":gx_")
CHECKS_SCHEMA = {
    "run_id": pl.String,
    "asset": pl.String,
    "check": pl.String,
    "severity": pl.String,
    "failed_rows": pl.Int64,
}


def collect_failed_checks(instance, run_id: str | None = None) -> pl.DataFrame:
    """Failed asset-check evaluations of one run (default: the latest run), this report's own
    check and the ones reported in detail elsewhere left out."""
    from dagster import DagsterEventType

    if run_id is None:
        latest = instance.get_run_records(limit=1)
        if not latest:
            return pl.DataFrame(schema=CHECKS_SCHEMA)
        run_id = latest[0].dagster_run.run_id
    rows = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if (
            evaluation.passed
            or name.startswith("monitoring_report:")
            or any(marker in name for marker in DETAILED_ELSEWHERE)
        ):
            continue
        failed_rows = evaluation.metadata.get("dagster_dbt/failed_row_count")
        rows.append(
            {
                "run_id": run_id,
                "asset": evaluation.asset_key.to_user_string(),
                "check": evaluation.check_name,
                "severity": evaluation.severity.value,
                "failed_rows": int(failed_rows.value) if failed_rows is not None else None,
            }
        )
    return pl.DataFrame(rows, schema=CHECKS_SCHEMA)

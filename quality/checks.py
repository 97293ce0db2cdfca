"""What each data-quality check does, as plain functions: read, validate, record.

The Dagster asset checks (assets/quality.py) and the publish gate (serving/gate.py) are thin
wrappers over these; tests call them directly.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from quality.aggregate import validate_frame, validate_query
from quality.docs import build_data_docs
from quality.frames import EVENTS_SQL, RAW_EVENTS_SQL, embeddings_frame, products_frame, volume_frame
from quality.history import record_rows
from quality.suites import (
    Thresholds,
    embeddings_suite,
    events_suite,
    naive_utc,
    products_suite,
    raw_events_suite,
    raw_events_volume_suite,
    recommendation_suites,
)
from quality.validate import SuiteRun, validate
from warehouse.store import connect


def window_key(first: date, last: date) -> str:
    """The history's partition_key: one landing day, or `first..last` for a ranged run."""
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def check_raw_events(
    warehouse: Path, first: date, last: date, now: datetime | None = None, t: Thresholds | None = None
) -> list[SuiteRun]:
    now = naive_utc(now)
    with connect(warehouse, read_only=True) as con:
        # The event rows are judged in DuckDB (quality/aggregate.py); the volume frame is a row per day.
        raw = validate_query(raw_events_suite(now, t), con, RAW_EVENTS_SQL, [first, last], checked_at=now)
        volume = volume_frame(con, first, last, t)
    return [raw, validate(raw_events_volume_suite(t), volume, checked_at=now)]


def check_events(
    warehouse: Path, first: date, last: date, now: datetime | None = None, t: Thresholds | None = None
) -> list[SuiteRun]:
    now = naive_utc(now)
    with connect(warehouse, read_only=True) as con:
        return [validate_query(events_suite(now, t), con, EVENTS_SQL, [first, last], checked_at=now)]


def check_products(
    warehouse: Path, now: datetime | None = None, t: Thresholds | None = None
) -> list[SuiteRun]:
    with connect(warehouse, read_only=True) as con:
        products = products_frame(con)
    return [validate(products_suite(t), products, checked_at=now)]


def check_embeddings(
    lancedb: Path | str, now: datetime | None = None, t: Thresholds | None = None
) -> list[SuiteRun]:
    return [validate(embeddings_suite(t), embeddings_frame(lancedb), checked_at=now)]


def check_recommendations(tables: dict, now: datetime | None = None) -> list[SuiteRun]:
    """The candidate's tables that are present (a missing table is the gate's own check).
    polars tables are judged in DuckDB over their Arrow buffers (quality/aggregate.py), never
    in pandas: a million shoppers' lists are 28M rows; others (pandas) by GX on the frame."""
    runs = []
    for suite in recommendation_suites():
        table = tables.get(suite.name)
        if table is None:
            continue
        if isinstance(table, pl.DataFrame):
            runs.append(validate_frame(suite, table, checked_at=now))
        else:
            runs.append(validate(suite, table, checked_at=now))
    return runs


def record(paths, runs: list[SuiteRun], run_id: str, partition_key: str) -> Path:
    """Write the runs to `data_quality_results` and to Data Docs; returns Data Docs' index.html.

    `paths` is a core.settings.Paths. Opens the warehouse read-write: call it when no
    other connection to the warehouse is open."""
    rows = [row for run in runs for row in run.rows(run_id, partition_key)]
    record_rows(paths.warehouse, rows)
    return build_data_docs(paths.reports, runs, run_id, partition_key)

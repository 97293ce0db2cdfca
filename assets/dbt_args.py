"""Pure builders for dbt command lines, unit-tested without running Dagster or dbt."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta


def landing_window(start: datetime | date, end: datetime | date) -> tuple[date, date]:
    """Dagster's time window [start, end) → the inclusive landing days dbt should process."""
    first = start.date() if isinstance(start, datetime) else start
    end_day = end.date() if isinstance(end, datetime) else end
    last = end_day - timedelta(days=1)
    if last < first:
        raise ValueError(f"empty partition window {start}..{end}")
    return first, last


def landing_days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def dbt_build_args(first: date, last: date, target: str = "duckdb") -> list[str]:
    """`dbt build` over one landing-day window, on `target` (profiles.yml; the profile's
    default, duckdb, names none). Unit tests run in the test suite, not nightly: those of
    incremental models read their own table's columns, which a first run lacks."""
    variables = {"min_date": first.isoformat(), "max_date": last.isoformat()}
    args = [
        "build",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        json.dumps(variables, sort_keys=True),
    ]
    return args if target == "duckdb" else [*args, "--target", target]

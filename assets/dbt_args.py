"""Pure builders for dbt command lines, unit-tested without running Dagster or dbt."""

from __future__ import annotations

from collections.abc import Mapping
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


# Read by the in_landing_window macro (dbt_project/macros/window.sql) before the vars.
WINDOW_ENV = ("SHOPGUIDE_DBT_MIN_DATE", "SHOPGUIDE_DBT_MAX_DATE")


def dbt_build_args(target: str = "duckdb") -> list[str]:
    """`dbt build` as the nightly runs it, on `target` (profiles.yml; the profile's default,
    duckdb, names none). Unit tests run in the test suite, not nightly: those of incremental
    models read their own table's columns, which a first run lacks."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    return args if target == "duckdb" else [*args, "--target", target]


def dbt_window_env(first: date, last: date) -> dict[str, str]:
    """The landing-day window of a `dbt build`, as environment variables rather than --vars:
    dbt re-parses the whole project (~10 s) whenever a var differs from its last parse, i.e.
    on every run; a changed env var re-parses only the model files that read it."""
    return dict(zip(WINDOW_ENV, (first.isoformat(), last.isoformat()), strict=True))


INDIRECT_SELECTION = "DBT_INDIRECT_SELECTION"


def dbt_selection_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Which tests a `dbt build` of part of the graph runs: `buildable`, those whose every
    parent is selected or upstream of the selection, unless the operator chose otherwise.
    dbt's default (`eager`) also runs a test of an unselected mart that points at a selected
    model (fct_events' relationship to dim_products), which fails on a home where that mart
    does not exist yet: materialising dim_products and its upstream from the UI failed before
    the first full run. A whole build selects every model, so it runs the same tests either way."""
    return {INDIRECT_SELECTION: environ.get(INDIRECT_SELECTION) or "buildable"}

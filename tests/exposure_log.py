"""A warehouse built from landing files the way a run builds it, minus Dagster: ingestion
through the warehouse functions, then `dbt build` of the whole project (unit tests excluded)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from core.dbt_manifest import DBT_EXECUTABLE
from warehouse.ingest import ingest_landing_day
from warehouse.landing import landing_days, landing_files
from warehouse.store import connect, replace_partition

PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


def dbt(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHOPGUIDE_HOME": str(home), "DO_NOT_TRACK": "1"}
    return subprocess.run(
        [str(DBT_EXECUTABLE), *args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)],
        capture_output=True,
        text=True,
        env=env,
    )


def build_warehouse(home: Path) -> Path:
    """Ingest every landing day under home/landing and build the dbt project; the DuckDB path."""
    landing = home / "landing"
    path = home / "warehouse" / "shopguide.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as con:
        for day in landing_days(landing):
            result = ingest_landing_day(landing, day)
            replace_partition(con, day, result.accepted, result.quarantined, len(landing_files(landing, day)))
    # The whole project: the existing models' tests must pass beside the exposure log too.
    built = dbt("build", "--exclude-resource-type", "unit_test", home=home)
    assert built.returncode == 0, built.stdout[-4000:]
    return path

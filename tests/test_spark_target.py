"""The dbt project on Apache Spark: the same models, built from the same landing days on both
targets (through `shopguide`'s runner, as `shopguide run --target ...` does), give the same
marts (row counts and an order-independent checksum computed by one function over both
engines' tables).

Spark runs locally (dbt-spark's session method, Java 17). When it cannot start, the test fails
and says why; it is never skipped: it is the only proof that the `spark` target works."""

from __future__ import annotations

import json
import subprocess
from datetime import date

import duckdb
import pytest
from dagster import AssetSelection
from typer.testing import CliRunner

from assets.dbt_args import landing_days
from core.dbt_manifest import DBT_DIR, DBT_EXECUTABLE, mart_models
from core.errors import BadInput
from shopguide.cli import app
from shopguide.runner import run_range
from warehouse.lake import canonical_checksum, check_spark_runtime, export_event_log, spark_table_relation
from warehouse.store import connect

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def _dbt_log_tail(lines: int = 40) -> str:
    """The end of the newest dbt log (dagster-dbt writes one per invocation under target/)."""
    logs = sorted((DBT_DIR / "target").glob("*/dbt.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return "(no dbt log)"
    return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])


def _run(home, first: date, last: date, target: str) -> None:
    """One `shopguide run`/`backfill` as the CLI does it, the event log and the dbt models only
    (a spark run is only those anyway; the Python assets downstream are not compared)."""
    warehouse = AssetSelection.groups("event_log", "staging", "intermediate", "marts")
    outcome = run_range(home, first, last, target=target, selection=warehouse, notify=lambda line: None)
    assert outcome.success and not outcome.failed_checks, (
        f"the {target} run over {first}..{last} failed ({outcome.failed_checks}); dbt's log:\n"
        + _dbt_log_tail()
    )


def _spark_models_only(home, first: date, last: date, tmp_path) -> None:
    """`dbt run --target spark` over a window (the incremental branch), without the dbt tests:
    the run before ran all of them on Spark, and the marts are compared row by row anyway. It
    saves the test most of a minute of per-test Spark jobs."""
    with connect(home.warehouse, read_only=True) as con:
        export_event_log(con, home.lake, landing_days(first, last))
    variables = json.dumps({"min_date": str(first), "max_date": str(last)})
    command = [str(DBT_EXECUTABLE), "run", "--target", "spark", "--vars", variables]
    command += ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
    command += ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"dbt run --target spark over {first}..{last} failed:\n{result.stdout[-3000:]}"
    )


def test_marts_are_identical_on_duckdb_and_spark(home, dbt_manifest, monkeypatch, tmp_path):
    # Not a skip: without Java or pyspark this raises SparkUnavailable, saying what to install.
    check_spark_runtime()
    # Tiny data: a handful of shuffle partitions instead of the default 8.
    monkeypatch.setenv("SHOPGUIDE_SPARK_SHUFFLE_PARTITIONS", "2")
    generated = CliRunner().invoke(
        app,
        ["generate", "--events", "2000", "--days", "3"]
        + ["--experiment-lift", "0.1", "--experiment-shoppers", "300"],
    )
    assert generated.exit_code == 0, generated.output

    # Landing day 1 builds every table from nothing; days 2-3 then take the incremental
    # branch (what the next nights and a backfill do), on both targets.
    _run(home, D1, D1, "duckdb")
    _run(home, D2, D3, "duckdb")
    _run(home, D1, D1, "spark")
    _spark_models_only(home, D2, D3, tmp_path)

    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        for mart in mart_models():
            spark_relation = spark_table_relation(home.spark_warehouse, mart)
            assert spark_relation is not None, f"spark wrote no files for {mart}"
            on_duckdb = canonical_checksum(con, f"main.{mart}")
            on_spark = canonical_checksum(con, spark_relation)
            assert on_duckdb[0] > 0, f"{mart} is empty: the comparison would prove nothing"
            assert on_spark == on_duckdb, f"{mart}: spark {on_spark[:2]} != duckdb {on_duckdb[:2]}"
        # Late events and the exposure log are in the three days: the comparison covers them.
        late = con.execute("select count(*) from main.fct_events where is_late").fetchone()[0]
        shown = con.execute("select count(*) from main.fct_recommendation_exposures").fetchone()[0]
        assert late > 0 and shown > 0


def test_an_unknown_target_is_refused_before_anything_runs(home):
    with pytest.raises(BadInput, match="--target 'trino'"):
        run_range(home, D1, D1, target="trino")
    (home.landing / D1.isoformat()).mkdir(parents=True)
    (home.landing / D1.isoformat() / "events.jsonl").write_text("{}\n")
    result = CliRunner().invoke(
        app, ["backfill", "--start", "2024-01-01", "--end", "2024-01-01", "--target", "trino"]
    )
    assert result.exit_code == 2
    assert "--target 'trino': use one of duckdb, spark." in result.output
    assert not home.warehouse.exists()

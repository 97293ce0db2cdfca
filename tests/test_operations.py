"""Concurrent use of one SHOPGUIDE_HOME: readers beside a run, a second run, a killed run.

The pipeline runs as real `shopguide backfill` processes on a tiny synthetic shop (1,000
events over two days), because what these tests guard is what happens between processes:
DuckDB's file lock, the run lock, a process that disappears without cleaning up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from shopguide.sources.synthetic import SyntheticConfig, generate

D1, D2 = date(2024, 1, 1), date(2024, 1, 2)
SHOPGUIDE = str(Path(sys.executable).with_name("shopguide"))
BACKFILL = [SHOPGUIDE, "backfill", "--start", D1.isoformat(), "--end", D2.isoformat()]

# `shopguide status --json` in a tight loop, in one process (no start-up cost between calls,
# so the reader has the warehouse open as often as it can), until the stop file appears.
STATUS_LOOP = """
import json, sys, time
from pathlib import Path
from typer.testing import CliRunner
from shopguide.cli import app

stop, out = Path(sys.argv[1]), Path(sys.argv[2])
runner, calls = CliRunner(), []
while not stop.exists():
    result = runner.invoke(app, ["status", "--json"])
    calls.append({"exit_code": result.exit_code, "output": result.output[:600]})  # the keys before the tables
    out.with_suffix(".started").touch()
out.write_text(json.dumps(calls))
"""


def small_shop(home) -> None:
    generate(home.landing, SyntheticConfig(events=1000, days=2, start_date=D1, late_share=0.0))


def wait_for_started_run(timeout: float = 180):
    """The run a `shopguide backfill` subprocess started, once Dagster records it as started."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        if runs:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError("the backfill did not start a Dagster run in time")


@pytest.mark.integration
def test_status_in_a_loop_beside_a_backfill_never_breaks_it(home, dbt_manifest, tmp_path):
    from dagster import AssetSelection

    from shopguide.runner import run_range

    small_shop(home)
    # A warehouse to read from the first call on: the event log alone takes seconds.
    assert run_range(home, D1, D2, selection=AssetSelection.assets("raw_events")).success
    stop, calls_file = tmp_path / "stop", tmp_path / "calls.json"
    reader = subprocess.Popen([sys.executable, "-c", STATUS_LOOP, str(stop), str(calls_file)])
    try:
        deadline = time.monotonic() + 120
        while not calls_file.with_suffix(".started").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the reader has read once before the backfill starts
        backfill = subprocess.run(BACKFILL, capture_output=True, text=True, timeout=900)
    finally:
        stop.touch()
        reader.wait(timeout=120)
    calls = json.loads(calls_file.read_text())
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    assert "WarehouseBusy" not in backfill.stderr and "Conflicting lock" not in backfill.stderr
    # The reader really ran beside the backfill, and every status it asked for was answered.
    assert len(calls) >= 10, calls
    failed = [call for call in calls if call["exit_code"] != 0]
    assert not failed, failed[:3]
    # While the run held the warehouse, status answered from the figures the run recorded.
    sources = [call["output"].split('"source": "')[1].split('"')[0] for call in calls]
    assert "snapshot" in sources and "warehouse" in sources, sources


@pytest.mark.integration
def test_a_second_backfill_is_refused_with_one_line_naming_the_running_one(home, dbt_manifest):
    small_shop(home)
    first = subprocess.Popen(BACKFILL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        running = wait_for_started_run()
        started = time.monotonic()
        second = subprocess.run(BACKFILL, capture_output=True, text=True, timeout=300)
        seconds = time.monotonic() - started
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    for expected in (running.run_id, "nightly_job", f"PID {first.pid}", "started", f"kill -INT {first.pid}"):
        assert expected in line, (expected, line)
    assert seconds < 60  # refused up front, not after loading the definitions and doing work


@pytest.mark.integration
def test_a_run_killed_with_sigkill_is_marked_failed_at_the_next_start(home, dbt_manifest, capsys):
    from dagster import AssetSelection, DagsterEventType, DagsterInstance, DagsterRunStatus

    from shopguide.runner import run_range

    small_shop(home)
    first = subprocess.Popen(BACKFILL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        killed = wait_for_started_run()
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    with DagsterInstance.get() as instance:  # Dagster alone leaves it so, forever
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.STARTED
    capsys.readouterr()

    outcome = run_range(home, D1, D1, selection=AssetSelection.assets("raw_events"))

    assert outcome.success
    notices = [line for line in capsys.readouterr().err.splitlines() if killed.run_id in line]
    assert len(notices) == 1 and f"PID {first.pid}" in notices[0] and "FAILURE" in notices[0], notices
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
        failures = instance.all_logs(killed.run_id, of_type=DagsterEventType.RUN_FAILURE)
        assert failures and "is gone" in failures[-1].dagster_event.message
        # The new run is not touched by the sweep: it finished on its own.
        assert instance.get_run_by_id(outcome.run_id).status == DagsterRunStatus.SUCCESS


def duckdb_reader(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the DuckDB file read-only for `seconds`, once it has it open."""
    import duckdb

    duckdb.connect(str(path)).close()
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
            f"print('ready', flush=True); time.sleep({seconds})",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "ready"
    return reader


def test_a_busy_warehouse_names_the_process_that_holds_it(tmp_path, monkeypatch):
    from warehouse import store

    path = tmp_path / "w.duckdb"
    holder = duckdb_reader(path, 60)
    try:
        monkeypatch.setattr(store, "WRITER_WAIT_S", 0.5)
        with pytest.raises(store.WarehouseBusy) as caught, store.connect(path):
            pass
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert f"PID {holder.pid}" in message and "time.sleep(60)" in message, message
    assert "dagster dev" not in message  # it names the real holder, not a guess


def test_a_writer_waits_for_a_short_lived_reader(tmp_path):
    from warehouse.store import connect

    path = tmp_path / "w.duckdb"
    reader = duckdb_reader(path, 1.5)
    try:
        started = time.monotonic()
        with connect(path) as con:  # held by the reader right now: waits, then writes
            con.execute("create table t as select 1 as x")
        waited = time.monotonic() - started
    finally:
        reader.kill()
        reader.wait()
    assert 0.3 < waited < 10


def _info(run_id: str = "r-holding", pid: int | None = None):
    from shopguide.runlock import RunInfo

    return RunInfo(
        run_id,
        "nightly_job",
        "2024-01-01",
        "2024-01-02",
        "2026-01-01 00:00:00 UTC",
        pid or os.getpid(),
        "test",
    )


def test_status_answers_from_the_recorded_figures_while_a_run_holds_the_home(home):
    from typer.testing import CliRunner

    from shopguide.cli import app
    from shopguide.inventory import record_figures
    from shopguide.runlock import exclusive_run
    from warehouse.store import connect

    with connect(home.warehouse) as con:
        con.execute("create table t as select 1 as x")
    with exclusive_run(home, _info()):
        record_figures(home, "r-holding", "before")
        # The run writes now. In one process a read-write and a read-only connection cannot
        # coexist, so had status opened the file, it would have failed.
        with connect(home.warehouse) as con:
            con.execute("insert into t values (2)")
            status = CliRunner().invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert report["source"] == "snapshot" and "r-holding" in report["running"]
    assert {t["table"]: t["rows"] for t in report["tables"]} == {"t": 1}  # as recorded, before the insert
    assert "is writing the warehouse" in status.stderr
    # The run has ended: status reads the warehouse itself again.
    after = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert after["source"] == "warehouse" and {t["table"]: t["rows"] for t in after["tables"]} == {"t": 2}


def test_a_run_is_refused_while_another_holds_the_home(home):
    from shopguide.runlock import RunInProgress, exclusive_run
    from shopguide.runner import run_range

    with exclusive_run(home, _info()), pytest.raises(RunInProgress) as caught:
        run_range(home, D1, D1)
    message = str(caught.value)
    assert (
        "run r-holding (nightly_job, 2024-01-01..2024-01-02)" in message and f"PID {os.getpid()}" in message
    )
    # Released with its holder: the next run may take the home.
    with exclusive_run(home, _info("r-next")):
        pass


def test_a_run_waits_for_a_reader_already_inside_then_takes_the_home(home, monkeypatch):
    import threading

    from shopguide import runlock

    held = []
    with runlock.reading_warehouse(home) as may_open:
        assert may_open
        threading.Timer(0.5, lambda: held.append("reader left")).start()
        # The reader leaves after 0.5 s (when this block ends); the run must not start before.
        waiter = threading.Thread(target=lambda: held.append(_enter(home)))
        waiter.start()
        time.sleep(0.8)
    waiter.join(timeout=10)
    assert held == ["reader left", "run entered"]
    monkeypatch.setattr(runlock, "READER_WAIT_S", 0.3)
    with runlock.reading_warehouse(home), pytest.raises(runlock.WarehouseBusy, match="still being read"):
        _enter(home)


def _enter(home) -> str:
    from shopguide.runlock import exclusive_run

    with exclusive_run(home, _info("r-waiting")):
        return "run entered"


@pytest.mark.parametrize("args", [["demo"], ["evaluate"], ["report"]])
def test_commands_that_need_the_warehouse_are_refused_while_a_run_holds_it(home, args):
    from typer.testing import CliRunner

    from shopguide.cli import app
    from shopguide.runlock import exclusive_run

    with exclusive_run(home, _info()):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "run r-holding" in lines[0] and "Traceback" not in result.output, lines
    assert not any(home.landing.iterdir())  # the demo imported nothing

"""Dagster as a service: the webserver and the daemon on a PostgreSQL instance.

A throwaway PostgreSQL cluster on 127.0.0.1 (tests/postgres_server.py), `shopguide webserver`
and `shopguide daemon` as subprocesses against it; the test turns the landing sensor on through
the webserver's GraphQL API, drops a landing day, and waits for the daemon to launch the
nightly run for it and for that run to succeed. The run's record is then read from
PostgreSQL itself, and every process started is gone afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import psutil
import pytest
from postgres_server import free_port, postgres_server

from shopguide.sources.synthetic import SyntheticConfig, generate

pytestmark = pytest.mark.integration

DAY = date(2024, 1, 1)
REPOSITORY = "__repository__"  # the repository a Definitions object becomes


@pytest.fixture
def postgres():
    with postgres_server() as server:
        yield server


class Service:
    """A `shopguide` command in its own session, its output in a log file."""

    def __init__(self, args: list[str], log: Path):
        self.log = log
        shopguide = Path(sys.executable).with_name("shopguide")
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [str(shopguide), *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.descendants: list[psutil.Process] = []

    def tail(self) -> str:
        # Without Dagster's BetaWarning lines (two per asset at every code load): they bury the cause.
        lines = self.log.read_text(errors="replace").splitlines()
        kept = [
            line for line in lines if line.strip() and "BetaWarning" not in line and "return fn(" not in line
        ]
        return "\n".join(kept)[-3000:]

    def remember_descendants(self) -> None:
        """What it started (the Dagster process, code servers, runs): checked gone after stop."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.descendants += [child for child in children if child not in self.descendants]

    def stop(self) -> None:
        """SIGTERM to the CLI, which stops its Dagster process group; SIGKILL if it hangs."""
        self.remember_descendants()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        gone, alive = psutil.wait_procs(self.descendants, timeout=20)
        for leftover in alive:
            leftover.kill()
        assert not alive, f"left running after stop: {[p.pid for p in alive]}"


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        payload = json.loads(reply.read())
    assert "errors" not in payload, payload
    return payload["data"]


def wait_for(condition, timeout: float, what: str, services: list[Service], every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in services:
            assert service.process.poll() is None, f"{what}: a service exited:\n{service.tail()}"
        value = condition()
        if value:
            return value
        time.sleep(every)
    logs = "\n---\n".join(service.tail() for service in services)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def server_up(port: int):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as reply:
            return reply.read()
    except OSError:
        return None


def loaded_location(port: int) -> str | None:
    """The name of workspace.yaml's one code location once the webserver has loaded it."""
    data = graphql(
        port,
        "{ workspaceOrError { __typename ... on Workspace { locationEntries { name "
        "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
    )
    entries = data["workspaceOrError"]["locationEntries"]
    assert len(entries) == 1, entries
    loaded = entries[0]["locationOrLoadError"]
    assert loaded is None or loaded["__typename"] != "PythonError", loaded
    return entries[0]["name"] if loaded else None


START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}"""

RUNS = """
{ runsOrError { __typename ... on Runs { results { runId status tags { key value } } } } }
"""


def sensor_runs(port: int) -> list[dict]:
    runs = graphql(port, RUNS)["runsOrError"]["results"]
    return [r for r in runs if {"key": "dagster/sensor_name", "value": "landing_sensor"} in r["tags"]]


def finished(port: int):
    runs = sensor_runs(port)
    if runs and all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for r in runs):
        return runs
    return None


def test_the_daemon_runs_the_landing_sensor_on_a_postgres_instance(
    home, dbt_manifest, postgres, tmp_path, monkeypatch
):
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    port = free_port()
    webserver = Service(["webserver", "--host", "127.0.0.1", "--port", str(port)], tmp_path / "webserver.log")
    daemon = Service(["daemon"], tmp_path / "daemon.log")
    services = [webserver, daemon]
    try:
        wait_for(lambda: server_up(port), 120, "the webserver to answer", services)
        location = wait_for(lambda: loaded_location(port), 120, "the code location to load", services)
        # The instance is the PostgreSQL one: the file the CLI wrote says so.
        assert "postgres_db" in (home.dagster_home / "dagster.yaml").read_text()

        # One landing day a one-day synthetic shop fills: enough shoppers for the publish gate.
        generate(
            home.landing,
            SyntheticConfig(events=3000, days=1, start_date=DAY, late_share=0.0, duplicate_share=0.0),
        )
        days = [p.name for p in home.landing.iterdir() if not p.name.startswith(".")]  # not the shop state
        assert days == [DAY.isoformat()]
        started = graphql(
            port,
            START_SENSOR,
            {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": REPOSITORY,
                    "sensorName": "landing_sensor",
                }
            },
        )["startSensor"]
        assert started == {"__typename": "Sensor", "sensorState": {"status": "RUNNING"}}, started

        def run_finished():
            for service in services:  # the code servers and the run while they exist
                service.remember_descendants()
            return finished(port)

        runs = wait_for(run_finished, 480, "the sensor's run to finish", services, every=5)
        assert len(runs) == 1, runs
        run = runs[0]
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/partition"] == DAY.isoformat()
        assert run["status"] == "SUCCESS", f"run {run['runId']}: {run['status']}\n{daemon.tail()}"
    finally:
        errors = []
        for service in services:
            try:
                service.stop()
            except AssertionError as error:
                errors.append(str(error))
        assert not errors, errors

    # Dagster kept the run in PostgreSQL (not in a SQLite file under DAGSTER_HOME).
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute("select status from runs where run_id = %s", (run["runId"],))
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute("select count(*) from event_logs where run_id = %s", (run["runId"],))
        assert cursor.fetchone()[0] > 0
    assert not list(home.dagster_home.glob("history/runs.db"))
    # Stopped cleanly: nothing listens on the webserver's port any more.
    assert server_up(port) is None


def test_without_postgresql_the_test_fails_with_the_reason_instead_of_skipping(monkeypatch):
    import postgres_server

    monkeypatch.setattr(postgres_server.shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(postgres_server.glob, "glob", lambda pattern: [])
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL server binaries .* not found"):
        with postgres_server.postgres_server():
            pass

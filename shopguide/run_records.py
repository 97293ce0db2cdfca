"""Runs in this home's Dagster instance that are in progress, and those that only look so.

A run executes inside the `shopguide` process that launched it (runner.py), so when that
process is killed (kill -9, an OOM kill, a power cut) nothing is left to record the end, and
Dagster shows the run as STARTED forever. Dagster's run monitoring would catch it, but only
under a daemon, which CLI runs do not have. So every run records its process (PID, start
time, host) as tags, and the next pipeline command marks the runs whose process is gone as
failed (`fail_orphaned_runs`).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from shopguide.runlock import process_alive, process_start_ticks

if TYPE_CHECKING:
    from dagster import DagsterInstance, DagsterRun

PID_TAG = "shopguide/pid"
PID_START_TAG = "shopguide/pid_start_ticks"
HOST_TAG = "shopguide/host"


def process_tags() -> dict[str, str]:
    """Tags naming the process a run executes in."""
    pid = os.getpid()
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    ticks = process_start_ticks(pid)
    if ticks is not None:
        tags[PID_START_TAG] = str(ticks)
    return tags


def _in_progress(instance: DagsterInstance) -> list[DagsterRun]:
    from dagster import DagsterRunStatus, RunsFilter

    # Executing or about to: a QUEUED run has no process yet, and waits for the daemon.
    statuses = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    return list(instance.get_runs(RunsFilter(statuses=statuses)))


def is_orphan(run: DagsterRun) -> bool:
    """Launched by shopguide on this machine, in a process that no longer exists. Runs
    without the tags (launched from the UI) are left to Dagster; so are other hosts' runs."""
    pid = run.tags.get(PID_TAG)
    if pid is None or run.tags.get(HOST_TAG) != socket.gethostname():
        return False
    ticks = run.tags.get(PID_START_TAG)
    return not process_alive(int(pid), int(ticks) if ticks else None)


def describe(run: DagsterRun, instance: DagsterInstance) -> str:
    from datetime import UTC, datetime

    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record is not None else None
    when = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if started else "?"
    pid = run.tags.get(PID_TAG)
    by = f" by PID {pid}" if pid else " from the Dagster UI"
    return f"run {run.run_id} ({run.job_name}, {run.status.value}) started {when}{by}"


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark as FAILURE the in-progress runs whose process is gone; one line per run."""
    lines = []
    for run in _in_progress(instance):
        if not is_orphan(run):
            continue
        what = describe(run, instance)
        instance.report_run_failed(
            run,
            f"Marked failed by shopguide at the next start: the process that executed this run "
            f"(PID {run.tags[PID_TAG]}) is gone, killed before the run ended. Its partial work "
            "is replaced when the days are run again.",
        )
        lines.append(f"note: {what} was left in progress by a process that is gone; marked FAILURE.")
    return lines


def live_runs(instance: DagsterInstance) -> list[DagsterRun]:
    """In-progress runs that are really running (or that Dagster alone can judge: UI runs)."""
    return [run for run in _in_progress(instance) if not is_orphan(run)]

"""Sensors: a nightly run for each landing day whose files changed, and an intraday refresh
when a file lands after the current snapshot's day."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from dagster import DagsterRunStatus, RunRequest, RunsFilter, SensorEvaluationContext, SkipReason, sensor

from assets.intraday import pending
from assets.partitions import daily_partitions
from core.settings import Paths
from orchestration.jobs import intraday_job, nightly_job
from warehouse.landing import landing_days, landing_files


def landing_fingerprint(landing_root: Path, day: date) -> str:
    """Names, sizes and modification times of a day's files: changes when a file lands."""
    digest = hashlib.sha256()
    for path in landing_files(landing_root, day):
        stat = path.stat()
        # surrogateescape: a name that is not UTF-8 is hashed as its bytes (ingestion refuses
        # the file with a quarantine row; the day must still get its run).
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def landing_run_requests(landing_root: Path, valid_keys: set[str]) -> list[RunRequest]:
    """One request per landing day; the run_key makes Dagster skip days already requested."""
    requests = []
    for day in landing_days(landing_root):
        key = day.isoformat()
        if key not in valid_keys:
            continue
        fingerprint = landing_fingerprint(landing_root, day)
        requests.append(RunRequest(run_key=f"{key}:{fingerprint}", partition_key=key))
    return requests


@sensor(
    job=nightly_job,
    minimum_interval_seconds=60,
    description="Runs the nightly job for each landing day with new or changed files.",
)
def landing_sensor(context: SensorEvaluationContext):
    landing_root = Paths.from_env().landing
    valid = set(daily_partitions.get_partition_keys())
    requests = landing_run_requests(landing_root, valid)
    if not requests:
        return SkipReason(f"No landing files under {landing_root}.")
    return requests


def intraday_run_request(paths: Paths) -> RunRequest | SkipReason:
    """A refresh when a landing file after the current snapshot's day is new or changed; the
    run_key (snapshot and the new files' sizes and times) makes Dagster skip it once done."""
    found = pending(paths)
    if found is None:
        return SkipReason(
            "No landing file since the current snapshot's day is new (or nothing is published)."
        )
    snapshot_id, files = found
    digest = hashlib.sha256(
        "".join(f"{name}:{mark};" for name, mark in files.items()).encode("utf-8", "surrogateescape")
    )
    return RunRequest(run_key=f"{snapshot_id}:{digest.hexdigest()[:16]}")


ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@sensor(
    job=intraday_job,
    minimum_interval_seconds=30,
    description=(
        "Refreshes the lists of the shoppers with new events when a landing file of a day after the "
        "current snapshot's lands (intraday overlay); waits while a run holds the warehouse."
    ),
)
def intraday_sensor(context: SensorEvaluationContext):
    # The refresh writes the event log: a nightly or intraday run in progress holds it.
    busy = context.instance.get_run_records(RunsFilter(statuses=ACTIVE), limit=1)
    if busy:
        return SkipReason(f"run {busy[0].dagster_run.run_id} is in progress; refreshing after it.")
    return intraday_run_request(Paths.from_env())

"""A run for each landing day whose files changed since the sensor last looked."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from assets.partitions import daily_partitions
from core.settings import Paths
from orchestration.jobs import nightly_job
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

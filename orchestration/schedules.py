from dagster import build_schedule_from_partitioned_job

from orchestration.jobs import nightly_job

# 02:00 UTC, for yesterday's landing day (the schedule targets the last complete partition).
nightly_schedule = build_schedule_from_partitioned_job(
    nightly_job, name="nightly_schedule", hour_of_day=2, minute_of_hour=0
)

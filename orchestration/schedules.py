from datetime import timedelta

from dagster import RunRequest, ScheduleEvaluationContext, build_schedule_from_partitioned_job, schedule

from orchestration.jobs import evaluation_job, nightly_job, ranker_training_job

# 02:00 UTC, for yesterday's landing day (the schedule targets the last complete partition).
nightly_schedule = build_schedule_from_partitioned_job(
    nightly_job, name="nightly_schedule", hour_of_day=2, minute_of_hour=0
)


@schedule(cron_schedule="0 4 * * 1", job=evaluation_job, execution_timezone="UTC")
def evaluation_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """Mondays 04:00 UTC, after the nightly run: evaluate up to yesterday's landing day."""
    yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
    return RunRequest(partition_key=yesterday.isoformat())


@schedule(cron_schedule="0 3 * * 0", job=ranker_training_job, execution_timezone="UTC")
def ranker_training_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """Sundays 03:00 UTC, after the nightly run: retrain on the log up to yesterday."""
    yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
    return RunRequest(partition_key=yesterday.isoformat())

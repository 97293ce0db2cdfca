"""One daily partition per landing day, shared by assets, jobs, schedules and sensors."""

from dagster import DailyPartitionsDefinition

# The first day of the shipped Online Retail data; synthetic data starts later.
FIRST_LANDING_DAY = "2010-12-01"

daily_partitions = DailyPartitionsDefinition(start_date=FIRST_LANDING_DAY, timezone="UTC")

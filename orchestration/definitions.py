"""The one code location: assembles assets, jobs, schedules, sensors and resources."""

from dagster import Definitions, load_assets_from_modules

from assets import dbt, embeddings, ingestion, recommendations
from orchestration.jobs import nightly_job
from orchestration.resources import build_resources
from orchestration.schedules import nightly_schedule
from orchestration.sensors import landing_sensor

defs = Definitions(
    assets=load_assets_from_modules([ingestion, dbt, embeddings, recommendations]),
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=[landing_sensor],
    resources=build_resources(),
)

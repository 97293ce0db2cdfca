"""The one code location: assembles assets, jobs, schedules, sensors and resources."""

from dagster import Definitions, load_assets_from_modules

from assets import (
    dbt,
    embeddings,
    evaluation,
    experiments,
    ingestion,
    monitoring,
    overlay,
    ranker,
    recommendations,
    search,
)
from assets.quality import quality_checks
from assets.resources import build_resources
from core.memory import map_large_allocations
from orchestration.jobs import evaluation_job, intraday_job, nightly_job, ranker_training_job
from orchestration.schedules import evaluation_schedule, nightly_schedule, ranker_training_schedule
from orchestration.sensors import intraday_sensor, landing_sensor

# Every process that runs the assets loads this module (the CLI's runs, and dagster dev's code
# server and run workers): large arrays freed by one step go back to the system instead of
# staying resident through the next (core/memory.py).
map_large_allocations()

defs = Definitions(
    assets=load_assets_from_modules(
        [
            ingestion,
            dbt,
            embeddings,
            search,
            recommendations,
            ranker,
            evaluation,
            experiments,
            monitoring,
            overlay,
        ]
    ),
    asset_checks=quality_checks,
    jobs=[nightly_job, evaluation_job, ranker_training_job, intraday_job],
    schedules=[nightly_schedule, evaluation_schedule, ranker_training_schedule],
    sensors=[landing_sensor, intraday_sensor],
    resources=build_resources(),
)

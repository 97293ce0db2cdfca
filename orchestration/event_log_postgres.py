"""Dagster's PostgreSQL event log with one "planned" event per asset per run, the partition
status kept true (orchestration/planned_subsets.py): what the service deployment
(SHOPGUIDE_DAGSTER_STORAGE=postgres, core/instance.py) names as its event log storage.

A module of its own so that the embedded SQLite instance never imports the PostgreSQL driver.
PostgreSQL already writes a batch of events in one statement (PostgresEventLogStorage
.store_event_batch), so only the planned events change here.
"""

from __future__ import annotations

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from orchestration.planned_subsets import PartitionSubsetPlanning


class SubsetPlannedPostgresEventLogStorage(PartitionSubsetPlanning, PostgresEventLogStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SubsetPlannedPostgresEventLogStorage:
        # The stock classmethod builds a PostgresEventLogStorage by name, not `cls`.
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

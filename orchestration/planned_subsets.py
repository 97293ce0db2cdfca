"""One "planned" event per asset per run, with the per-partition status Dagster shows kept true.

Why: a ranged run (a backfill of the demo's 374 days is one run) makes Dagster write one
ASSET_MATERIALIZATION_PLANNED event per asset per partition before its first step: 7,854
events, ~12 s of the demo's run. Dagster can write one event per asset carrying the run's
partition subset instead (`supports_partition_subset_in_asset_materialization_planned_events`,
the DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS switch), but its SQL storages derive a
partition's *failed* and *in progress* status (the partition bar of the UI,
`instance.get_status_by_partition`) and a partition's latest run from per-partition planned
rows only: with the subset events a failed ranged run leaves its partitions "missing" and a
running one shows nothing in progress (tests/test_event_log.py shows both).

This mixin turns the subset events on and answers those two storage reads from both kinds of
planned row, so that failed, in-progress and materialised partitions read exactly as they do
with the per-partition events. The reads cost a deserialisation per subset event newer than
the status cache's cursor, i.e. per run, not per partition.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetKey
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.base import PlannedMaterializationInfo
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._serdes import deserialize_value
from sqlalchemy import and_, func

PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value
MATERIALIZED = DagsterEventType.ASSET_MATERIALIZATION.value
table = SqlEventLogStorageTable


def _planned_partitions(serialized_event: str) -> list[str] | None:
    entry = deserialize_value(serialized_event, EventLogEntry)
    subset = entry.get_dagster_event().event_specific_data.partitions_subset
    return subset.get_partition_keys() if subset is not None else None


class PartitionSubsetPlanning:
    """Mixin for a SqlEventLogStorage subclass (put it first among the bases)."""

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def _subset_planned(self, asset_key: AssetKey, after: int | None, descending: bool = False):
        """(storage id, run id, partition keys) of the asset's subset planned events."""
        query = db_select([table.c.id, table.c.run_id, table.c.event]).where(
            and_(
                table.c.asset_key == asset_key.to_string(),
                table.c.dagster_event_type == PLANNED,
                table.c.partition.is_(None),
                table.c.id > (after or 0),
            )
        )
        query = query.order_by(table.c.id.desc() if descending else table.c.id.asc())
        with self.index_connection() as conn:
            rows = conn.execute(query).fetchall()
        for storage_id, run_id, event in rows:
            keys = _planned_partitions(event)
            if keys is not None:  # an unpartitioned asset's planned event names no subset
                yield storage_id, run_id, keys

    def _latest_ids_by_partition(self, asset_key: AssetKey, after: int | None) -> dict[tuple[str, str], int]:
        """{(event type, partition): newest storage id} of per-partition planned and materialised rows."""
        query = (
            db_select([table.c.dagster_event_type, table.c.partition, func.max(table.c.id)])
            .where(
                and_(
                    table.c.asset_key == asset_key.to_string(),
                    table.c.dagster_event_type.in_([PLANNED, MATERIALIZED]),
                    table.c.partition.isnot(None),
                    table.c.id > (after or 0),
                )
            )
            .group_by(table.c.dagster_event_type, table.c.partition)
        )
        with self.index_connection() as conn:
            return {(kind, partition): newest for kind, partition, newest in conn.execute(query).fetchall()}

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: AssetKey, after_storage_id: int | None = None
    ) -> Mapping[str, tuple[str, int]]:
        """The stock answer (partitions whose newest planned event has no materialisation after
        it: failed or in progress, by the run's status), counting subset planned events too."""
        stock = super().get_latest_asset_partition_materialization_attempts_without_materializations(
            asset_key, after_storage_id
        )
        newest_subset: dict[str, tuple[str, int]] = {}
        for storage_id, run_id, keys in self._subset_planned(asset_key, after_storage_id):
            newest_subset.update(dict.fromkeys(keys, (run_id, storage_id)))
        if not newest_subset:
            return stock
        latest = self._latest_ids_by_partition(asset_key, after_storage_id)
        attempts = dict(stock)
        for partition, (run_id, planned_id) in newest_subset.items():
            if latest.get((PLANNED, partition), -1) > planned_id:
                continue  # a newer per-partition planned row: the stock answer stands
            if latest.get((MATERIALIZED, partition), -1) > planned_id:
                attempts.pop(partition, None)  # materialised after it was planned
            else:
                attempts[partition] = (run_id, planned_id)
        return attempts

    def get_latest_planned_materialization_info(
        self, asset_key: AssetKey, partition: str | None = None
    ) -> PlannedMaterializationInfo | None:
        """The newest run that planned this partition (the UI's "latest run" of a partition)."""
        stock = super().get_latest_planned_materialization_info(asset_key, partition)
        if partition is None:
            return stock  # the asset's newest planned event, whichever kind
        after = stock.storage_id if stock else None
        for storage_id, run_id, keys in self._subset_planned(asset_key, after, descending=True):
            if partition in keys:
                return PlannedMaterializationInfo(storage_id=storage_id, run_id=run_id)
        return stock

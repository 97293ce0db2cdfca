"""Dagster's SQLite event log, writing a batch of events in one transaction per database.

Why: a backfill of the demo's 374 daily partitions is one run, but Dagster records one
"planned" event and one materialisation per partition per asset (5,610 of each for the
Online Retail demo). The stock SQLite storage opens a database connection and commits (an
fsync) for every event, twice for asset events (the run's database and the cross-run index):
minutes of the demo spent on bookkeeping (bench/bench_pipeline.py). Dagster already hands those per-partition
events over as one batch (`store_event_batch`) when DAGSTER_EVENT_BATCH_SIZE is set, but the
SQLite storage stores a batch one event at a time. This class keeps every event, exactly as
the stock storage writes it (so the UI's per-partition status, failed partitions included,
is what it was), and only shares one connection and one commit per database across a batch.

If a batch fails, its transactions roll back and Dagster falls back to storing the events
one by one (EventMethods.handle_new_event), so a batch is never half-written.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from dagster import Field, StringSource
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData, serialize_value

from orchestration.planned_subsets import PartitionSubsetPlanning

# Databases held open at once (`_hold_open`): a run writes its own
# database and the index; the rest is room for a webserver or daemon that reads a few runs.
HELD_OPEN = 4
MATERIALIZATION = DagsterEventType.ASSET_MATERIALIZATION.value
# The event kinds that write the asset's row (SqlEventLogStorage._get_asset_entry_values).
ENTRY_KINDS = frozenset(
    {
        MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
        DagsterEventType.ASSET_OBSERVATION.value,
    }
)


class BatchedSqliteEventLogStorage(PartitionSubsetPlanning, SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` commits once per database, writing one
    planned event per asset per run (orchestration/planned_subsets.py)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._batch = threading.local()  # before super(): its __init__ connects already
        self._tables_seen: set[str] = set()
        self._asset_key_index_cols = False
        self._held: dict[str, sqlite3.Connection] = {}  # insertion order: oldest first
        super().__init__(base_dir, inst_data)
        # The stock lock serialises connections; a batch holds the run's and the index's
        # connections open together in one thread, so that thread must be able to re-enter.
        self._db_lock = threading.RLock()

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchedSqliteEventLogStorage:
        # Without base_dir: where the stock storage keeps it, under the instance's folder
        # (DAGSTER_HOME is always set when Dagster reads dagster.yaml), so a moved data
        # directory keeps its run history.
        base_dir = config_value.get("base_dir") or os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")
        return cls(base_dir, inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator:
        open_ = getattr(self._batch, "connections", None)
        if open_ is None:  # not inside a batch: the stock connect-commit-close per call
            with self._wal_connect(shard) as conn:
                yield conn
            return
        if shard not in open_:
            open_[shard] = self._batch.stack.enter_context(self._wal_connect(shard))
        yield open_[shard]

    @contextmanager
    def _wal_connect(self, shard: str) -> Iterator:
        """The stock connection, committing without an fsync. Every event outside a batch (a
        log line, a check result) is a connection and a commit of its own: with the default
        `synchronous=FULL` each commit and close waits for the disk, ~10 ms apiece on this
        machine under load, seconds of a nightly run (8 s of one new day's 53 s). The
        databases are in WAL mode, where `NORMAL` cannot corrupt them: a power cut (not a
        killed process) may lose the last events, and the run is then marked failed at the
        next start, as any run that stopped mid-way is."""
        with super()._connect(shard) as conn:
            # Before the transaction's first statement: SQLite is still in autocommit there.
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            self._hold_open(shard)
            yield conn

    def _hold_open(self, shard: str) -> None:
        """Keep one idle connection to the shard's database for as long as the storage lives.
        Every event outside a batch opens and closes a connection (the stock storage's); when
        the one closing is the database's last, SQLite checkpoints the WAL into the database,
        syncs and deletes it, and the next event creates it again: ~15 ms an event, seconds of
        a new day's run. With this connection open no other is ever the last, and the WAL is
        checkpointed as it grows (every 1,000 pages), as SQLite does for long-lived connections.
        It holds no lock between statements, so readers and writers elsewhere are unaffected."""
        if shard in self._held:
            return
        held = sqlite3.connect(self.path_for_shard(shard), check_same_thread=False)
        held.execute("SELECT count(*) FROM sqlite_master").fetchall()  # attaches to the WAL
        self._held[shard] = held
        while len(self._held) > HELD_OPEN:
            self._held.pop(next(iter(self._held))).close()

    def _release_held(self) -> None:
        with self._db_lock:
            while self._held:
                self._held.popitem()[1].close()

    def wipe(self) -> None:
        self._release_held()  # the run databases are deleted: let go of them first
        super().wipe()

    def dispose(self) -> None:
        self._release_held()  # the last close checkpoints the WAL: the files are left tidy
        super().dispose()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if len(events) < 2 or getattr(self._batch, "connections", None) is not None:
            for event in events:
                self.store_event(event)
            return
        # Each database's connection is opened (and its transaction begun) on first use and
        # committed when the stack closes; an exception rolls every one of them back.
        with ExitStack() as stack:
            self._batch.stack, self._batch.connections = stack, {}
            self._batch.superseded = superseded_asset_entries(events)
            try:
                for event in events:
                    self.store_event(event)
            finally:
                self._batch.connections = None
                self._batch.superseded = frozenset()

    def _store_asset_event(self, conn, event: EventLogEntry, event_id: int) -> None:
        """The asset's row in the index (its latest materialisation, run and timestamp), skipped
        for an event whose values a later event of the same batch overwrites anyway: in a
        ranged run all but the last of an asset's partitions (the stock storage serialises the
        event a second time for that row, then fails an INSERT and runs an UPDATE, per event)."""
        if id(event) in getattr(self._batch, "superseded", ()):
            return
        super()._store_asset_event(conn, event, event_id)

    def has_table(self, table_name: str) -> bool:
        """The stock check builds a database engine per call, and runs for every event with
        indexed tags (every materialisation): tables are never dropped while the instance is
        open, so a table once seen is remembered."""
        if table_name in self._tables_seen:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_seen.add(table_name)
        return found

    def _has_asset_key_index_cols_on_connection(self, conn) -> bool:
        """Read the schema once (the stock storage does so per asset event): the columns are
        added by `dagster instance migrate`, never removed."""
        if not self._asset_key_index_cols:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """The stock rows (one per planned partition), but the event serialised once and the
        rows inserted with one prepared statement: the stock version serialises the event
        and compiles a many-row VALUES clause per partition: a third of the CPU of writing
        the demo's planned events (64 checks x 374 partitions) in a cProfile."""
        planned = event.get_dagster_event().event_specific_data
        partition_keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        common = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert(), [{**common, "partition": key} for key in partition_keys]
            )


def superseded_asset_entries(events: Sequence[EventLogEntry]) -> frozenset[int]:
    """ids of the events whose asset-row update a later event of the batch fully overwrites: a
    later event of the same asset and kind, or a later materialisation (it sets every column
    a planned event or an observation sets). Walks backwards keeping what comes later."""
    later: dict = {}  # asset key -> the kinds of event seen after this point
    superseded = set()
    for event in reversed(events):
        dagster_event = event.dagster_event
        if (
            dagster_event is None
            or dagster_event.asset_key is None
            or dagster_event.event_type_value not in ENTRY_KINDS
        ):
            continue
        kinds = later.setdefault(dagster_event.asset_key, set())
        kind = dagster_event.event_type_value
        if kind in kinds or MATERIALIZATION in kinds:
            superseded.add(id(event))
        kinds.add(kind)
    return frozenset(superseded)

"""The batched Dagster event log: a ranged run shows analysts exactly what the stock storage shows.

What it proves: with the per-partition events written in one transaction per database and one
"planned" event per asset per run (a partition subset, orchestration/planned_subsets.py), the
per-partition materialisations, the per-partition status (failed and in-progress partitions
included, what the UI shows analysts), each partition's latest run and each asset's latest
materialisation are those of the stock one-commit-per-event SQLite storage, which writes a
planned event per partition; and a batch really is written as one batch.
"""

from collections import Counter

import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    PartitionKeyRange,
    asset,
    define_asset_job,
)
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from core.instance import LEGACY_CONTENT, instance_yaml
from orchestration.event_log import BatchedSqliteEventLogStorage
from orchestration.event_log_postgres import SubsetPlannedPostgresEventLogStorage

DAGSTER_YAML = instance_yaml("sqlite")  # what shopguide writes for its embedded instance
STOCK_YAML = LEGACY_CONTENT  # telemetry off, Dagster's stock SQLite storage

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
FIRST, LAST = "2024-01-01", "2024-01-10"


def _job(fail: str | None = None, seen: dict | None = None):
    """Two daily assets over a range in one run; `fail` names the one that raises. `seen`
    receives the status of `after`'s partitions read while its step runs."""

    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
    def days(context) -> MaterializeResult:
        if fail == "days":
            raise RuntimeError("broken on purpose")
        return MaterializeResult(metadata={"days": len(context.partition_keys)})

    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), deps=[days])
    def after(context) -> MaterializeResult:
        if seen is not None:
            seen.update(statuses(context.instance, ["after"], context.partition_keys)["after"])
        if fail == "after":
            raise RuntimeError("broken on purpose")
        return MaterializeResult()

    job = define_asset_job("ranged_job", partitions_def=DAYS)
    return Definitions(assets=[days, after], jobs=[job]).resolve_job_def("ranged_job")


def statuses(instance, names, keys) -> dict:
    """{asset: {partition: status}}, None read as MISSING (what the UI's partition bar shows)."""
    found = {name: instance.get_status_by_partition(AssetKey(name), keys, DAYS) for name in names}
    return {
        name: {k: (s.value if s else "MISSING") for k, s in by_key.items()} for name, by_key in found.items()
    }


def _instance(tmp_path, monkeypatch, yaml: str) -> DagsterInstance:
    home = tmp_path / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "2000")
    return DagsterInstance.get()


def _execute(instance, first=FIRST, last=LAST, fail=None, seen=None):
    return _job(fail, seen).execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def _run(tmp_path, monkeypatch, yaml: str, fail: str | None = None):
    instance = _instance(tmp_path, monkeypatch, yaml)
    result = _execute(instance, fail=fail)
    logs = instance.all_logs(result.run_id)
    kinds = Counter(r.dagster_event.event_type_value for r in logs if r.dagster_event)
    keys = DAYS.get_partition_keys_in_range(PartitionKeyRange(FIRST, LAST))
    return instance, kinds, statuses(instance, ["days", "after"], keys)


@pytest.mark.parametrize("fail", [None, "days", "after"])
def test_a_ranged_run_shows_what_the_stock_storage_shows(tmp_path, monkeypatch, fail):
    batched, kinds, status = _run(tmp_path / "batched", monkeypatch, DAGSTER_YAML, fail)
    stock, stock_kinds, stock_status = _run(tmp_path / "stock", monkeypatch, STOCK_YAML, fail)
    assert type(batched.event_log_storage) is BatchedSqliteEventLogStorage
    assert type(stock.event_log_storage) is SqliteEventLogStorage
    kinds.pop("ENGINE_EVENT", None), stock_kinds.pop("ENGINE_EVENT", None)
    assert stock_kinds.pop("ASSET_MATERIALIZATION_PLANNED") == 20  # one per partition per asset
    assert kinds.pop("ASSET_MATERIALIZATION_PLANNED") == 2  # one per asset, naming its 10 days
    assert kinds == stock_kinds
    assert kinds["ASSET_MATERIALIZATION"] == {None: 20, "after": 10, "days": 0}[fail]
    assert status == stock_status
    expected = {None: ("MATERIALIZED",) * 2, "after": ("MATERIALIZED", "FAILED"), "days": ("FAILED",) * 2}[
        fail
    ]
    assert ({*status["days"].values()}, {*status["after"].values()}) == ({expected[0]}, {expected[1]})
    # The asset's own row: its latest materialisation (the last partition's) and latest run.
    for name in ("days", "after"):
        ours, theirs = (i.get_asset_records([AssetKey(name)]) for i in (batched, stock))
        if fail == "days" or (fail == "after" and name == "after"):
            continue
        for record in (ours[0], theirs[0]):
            assert record.asset_entry.last_materialization.dagster_event.partition == LAST


def _history(instance) -> tuple[dict, dict, list[int]]:
    """Failed, then re-run and materialised in part, then failed again on another day: the
    status of every partition, the index of its latest run, and each run's planned events."""
    keys = DAYS.get_partition_keys_in_range(PartitionKeyRange(FIRST, LAST))
    runs = [
        _execute(instance, fail="days").run_id,
        _execute(instance, "2024-01-03", "2024-01-04").run_id,
        _execute(instance, "2024-01-05", "2024-01-05", fail="after").run_id,
    ]
    latest = {
        k: runs.index(instance.get_latest_planned_materialization_info(AssetKey("after"), k).run_id)
        for k in keys
    }
    planned = [
        len(instance.all_logs(run, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)) for run in runs
    ]
    return statuses(instance, ["days", "after"], keys), latest, planned


def test_later_runs_over_part_of_a_range_show_what_the_stock_storage_shows(tmp_path, monkeypatch):
    """Each partition shows its latest outcome and its latest run, as with per-partition planned events."""
    status, latest, planned = _history(_instance(tmp_path / "batched", monkeypatch, DAGSTER_YAML))
    stock_status, stock_latest, stock_planned = _history(
        _instance(tmp_path / "stock", monkeypatch, STOCK_YAML)
    )
    assert (status, latest) == (stock_status, stock_latest)
    assert (planned, stock_planned) == ([2, 2, 2], [20, 4, 2])
    keys = sorted(status["days"])
    assert status["days"] == {
        k: "MATERIALIZED" if k in ("2024-01-03", "2024-01-04", "2024-01-05") else "FAILED" for k in keys
    }
    assert status["after"]["2024-01-05"] == "FAILED" and status["after"]["2024-01-04"] == "MATERIALIZED"
    assert latest == {k: {"2024-01-03": 1, "2024-01-04": 1, "2024-01-05": 2}.get(k, 0) for k in keys}


@pytest.mark.integration
def test_the_postgres_instance_shows_what_the_stock_sqlite_storage_shows(tmp_path, monkeypatch):
    """The service deployment's event log (core/instance.py, SHOPGUIDE_DAGSTER_STORAGE=postgres)."""
    from postgres_server import postgres_server

    stock = _history(_instance(tmp_path / "stock", monkeypatch, STOCK_YAML))
    with postgres_server() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        instance = _instance(tmp_path / "postgres", monkeypatch, instance_yaml("postgres"))
        assert type(instance.event_log_storage) is SubsetPlannedPostgresEventLogStorage
        status, latest, planned = _history(instance)
        instance.dispose()
    assert (status, latest) == stock[:2]
    assert planned == [2, 2, 2]


def test_partitions_being_materialised_show_in_progress(tmp_path, monkeypatch):
    seen = {}
    _execute(_instance(tmp_path, monkeypatch, DAGSTER_YAML), "2024-01-02", "2024-01-03", seen=seen)
    assert seen == {"2024-01-02": "IN_PROGRESS", "2024-01-03": "IN_PROGRESS"}


def test_a_batch_commits_once_per_database(tmp_path, monkeypatch):
    commits = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def counted(self, events):
        commits.append(len(events))
        original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", counted)
    _run(tmp_path, monkeypatch, DAGSTER_YAML)
    # The run's planned events (one per asset) and each asset's 10 materialisations.
    assert sorted(commits) == [2, 10, 10]


def test_connections_commit_without_waiting_for_the_disk(tmp_path, monkeypatch):
    """Every connection, in a batch or not, runs with synchronous=NORMAL (1): in WAL mode a
    commit then does not fsync (the stock FULL (2) does, per event)."""
    instance = _instance(tmp_path, monkeypatch, DAGSTER_YAML)
    storage = instance.event_log_storage
    result = _execute(instance)
    seen = []
    with storage.run_connection(result.run_id) as conn:
        seen.append(conn.exec_driver_sql("PRAGMA synchronous").scalar())
        seen.append(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
    with storage.index_connection() as conn:
        seen.append(conn.exec_driver_sql("PRAGMA synchronous").scalar())
    assert seen == [1, "wal", 1]
    assert len(instance.all_logs(result.run_id)) > 0  # and the events are there


def test_databases_stay_open_so_no_event_checkpoints_the_wal(tmp_path, monkeypatch):
    """Each event outside a batch is a connection of its own; were it the database's last,
    its close would checkpoint and delete the WAL (~15 ms an event). The storage holds one idle
    connection per database it writes, so the WAL lives through the run, and the storage's
    dispose lets go of them: the last close folds the WAL into the database, nothing lost."""
    instance = _instance(tmp_path, monkeypatch, DAGSTER_YAML)
    result = _execute(instance)
    runs = tmp_path / "dagster" / "history" / "runs"
    wal = [runs / f"{result.run_id}.db-wal", runs / "index.db-wal"]
    assert [path.exists() for path in wal] == [True, True]
    events = len(instance.all_logs(result.run_id))
    instance.dispose()
    assert [path.exists() for path in wal] == [False, False]
    assert len(DagsterInstance.get().all_logs(result.run_id)) == events > 0

"""The batched Dagster event log: a ranged run records exactly what the stock storage records.

What it proves: with the per-partition events written in one transaction per database, the
run's events, the per-partition materialisations and the per-partition status (failed
partitions included, what the UI shows analysts) are those of the stock one-commit-per-event
SQLite storage, and a batch really is written as one batch.
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
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from core.instance import LEGACY_CONTENT, instance_yaml
from orchestration.event_log import BatchedSqliteEventLogStorage

DAGSTER_YAML = instance_yaml("sqlite")  # what shopguide writes for its embedded instance
STOCK_YAML = LEGACY_CONTENT  # telemetry off, Dagster's stock SQLite storage

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
FIRST, LAST = "2024-01-01", "2024-01-10"


def _job(fail: bool):
    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
    def days(context) -> MaterializeResult:
        if fail:
            raise RuntimeError("broken on purpose")
        return MaterializeResult(metadata={"days": len(context.partition_keys)})

    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), deps=[days])
    def after(context) -> MaterializeResult:
        return MaterializeResult()

    job = define_asset_job("ranged_job", partitions_def=DAYS)
    return Definitions(assets=[days, after], jobs=[job]).resolve_job_def("ranged_job")


def _run(tmp_path, monkeypatch, yaml: str, fail: bool = False):
    home = tmp_path / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "2000")
    instance = DagsterInstance.get()
    result = _job(fail).execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST},
    )
    logs = instance.all_logs(result.run_id)
    kinds = Counter(r.dagster_event.event_type_value for r in logs if r.dagster_event)
    keys = DAYS.get_partition_keys_in_range(PartitionKeyRange(FIRST, LAST))
    status = {
        name: instance.get_status_by_partition(AssetKey(name), keys, DAYS) for name in ("days", "after")
    }
    return instance, kinds, status


@pytest.mark.parametrize("fail", [False, True])
def test_a_ranged_run_records_what_the_stock_storage_records(tmp_path, monkeypatch, fail):
    batched, kinds, status = _run(tmp_path / "batched", monkeypatch, DAGSTER_YAML, fail)
    stock, stock_kinds, stock_status = _run(tmp_path / "stock", monkeypatch, STOCK_YAML, fail)
    assert type(batched.event_log_storage) is BatchedSqliteEventLogStorage
    assert type(stock.event_log_storage) is SqliteEventLogStorage
    kinds.pop("ENGINE_EVENT", None), stock_kinds.pop("ENGINE_EVENT", None)
    assert kinds == stock_kinds
    assert kinds["ASSET_MATERIALIZATION_PLANNED"] == 20  # one per partition per asset
    assert kinds["ASSET_MATERIALIZATION"] == (0 if fail else 20)
    assert status == stock_status
    expected = "FAILED" if fail else "MATERIALIZED"
    assert {s.value for s in status["days"].values()} == {expected}


def test_a_batch_commits_once_per_database(tmp_path, monkeypatch):
    commits = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def counted(self, events):
        commits.append(len(events))
        original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", counted)
    _run(tmp_path, monkeypatch, DAGSTER_YAML)
    # The run's planned events (2 assets x 10 days) and each asset's 10 materialisations.
    assert sorted(commits) == [10, 10, 20]

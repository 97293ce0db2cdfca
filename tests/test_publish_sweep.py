"""A publish sweeps the temporary snapshot folders a killed publish left behind."""

import os
import time

from recommendation_tables import USERS, make_tables

from serving.gate import GateContext
from serving.publish import publish_tables
from serving.snapshots import TEMP_PREFIX, list_snapshots, snapshots_dir


def test_a_publish_removes_old_temporary_folders_and_keeps_young_ones(tmp_path):
    parent = snapshots_dir(tmp_path)
    crashed = parent / f"{TEMP_PREFIX}20111208T020000Z-dead0001"
    live = parent / f"{TEMP_PREFIX}20111208T030000Z-live0002"  # another writer's, still at work
    for folder in (crashed, live):
        folder.mkdir(parents=True)
        (folder / "user_recommendations.parquet").write_bytes(b"half a file")
    two_hours_ago = time.time() - 7200
    os.utime(crashed, (two_hours_ago, two_hours_ago))

    outcome = publish_tables(
        tmp_path, make_tables(), {"partition_date": "2011-12-08"}, GateContext(active_user_ids=USERS)
    )
    assert outcome.published
    assert not crashed.exists()
    assert live.exists()
    assert list_snapshots(tmp_path) == [outcome.snapshot_id]

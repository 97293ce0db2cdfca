"""The serving commit protocol on both stores: a local folder and S3 (moto's in-process mock).

Snapshots appear whole or not at all, the pointer is swapped last and by one writer at a time,
a publish cut short before the swap leaves the previous version serving, and leftovers of a
killed writer are ignored, then swept. The same tests run on each store (`root`); the ones that
only an object store can show (a stale ETag refused) run on S3 alone, and the real HTTP path
(moto's server, the API, the nightly job) is tests/test_object_store.py's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
from moto import mock_aws
from recommendation_tables import USERS, make_tables

from serving import store as stores
from serving import store_s3
from serving.errors import ServingError, SnapshotExists, SnapshotNotFound
from serving.gate import GateContext, evaluate_gate
from serving.overlays import list_overlays, prune_overlays, write_overlay
from serving.publish import (
    _locked,
    _write_pointer,
    history,
    prune,
    publish,
    publish_tables,
    read_gate,
    read_pointer,
    rollback,
    set_overlay,
    versions,
)
from serving.reader import Reader
from serving.snapshots import list_snapshots, read_manifest, sweep_temp, write_snapshot
from serving.store import LocalStore, PointerConflict, StoreError, open_store
from serving.store_s3 import s3_client

BUCKET = "shopguide-serving"
T0 = datetime(2011, 12, 9, 2, 0, 0, tzinfo=UTC)
T1 = datetime(2011, 12, 10, 2, 0, 0, tzinfo=UTC)


def aws_env(monkeypatch) -> None:
    """Credentials for moto, and no endpoint: the in-process mock answers AWS's own."""
    for name in ("AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ALLOW_HTTP", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    s3_client.cache_clear()  # a client made outside this mock would talk to the real AWS


@pytest.fixture
def s3_root(monkeypatch):
    aws_env(monkeypatch)
    with mock_aws():
        open_store(f"s3://{BUCKET}").client.create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}/shop/serving"
    s3_client.cache_clear()


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return tmp_path / "serving"
    return request.getfixturevalue("s3_root")


def snap(root, offset=0, at=T0) -> str:
    return write_snapshot(
        root, make_tables(offset), {"partition_date": "2011-12-08"}, created_at=at
    ).snapshot_id


def gate_for(offset=0):
    return evaluate_gate(make_tables(offset), GateContext(active_user_ids=USERS))


def first_product(root, user="u01") -> str:
    return Reader(root).get_recommendations(user, 1)[0]["product_id"]


def test_publish_rollback_history_and_reader(root):
    first, second = snap(root, 0, T0), snap(root, 7, T1)
    assert list_snapshots(root) == [first, second]
    publish(root, first, gate_for(0))
    publish(root, second, gate_for(7))
    assert read_pointer(root)["current"] == second and read_pointer(root)["previous"] == [first]
    assert read_gate(root, second)["passed"] is True
    assert Reader(root).get_recommendations("u01", 3)[0]["snapshot_id"] == second
    assert first_product(root) == "P09"  # user 1, rank 1, offset 7

    pointer = rollback(root)
    assert pointer["current"] == first and first_product(root) == "P02"
    assert [e["action"] for e in history(root)] == ["publish", "publish", "rollback"]
    assert history(root, limit=1)[0]["from"] == second
    rows = {row["id"]: row for row in versions(root)}
    assert rows[first]["is_current"] and not rows[second]["is_current"]


def test_snapshots_are_immutable_and_ids_checked(root):
    sid = snap(root)
    with pytest.raises(SnapshotExists):
        snap(root)
    with pytest.raises(SnapshotNotFound, match="not a snapshot id"):
        read_manifest(root, "../../x")
    assert read_manifest(root, sid).row_counts["user_recommendations"] == 200


def test_a_publish_killed_before_the_pointer_swap_keeps_the_previous_version(root, monkeypatch):
    first = publish_tables(root, make_tables(0), {}, GateContext(active_user_ids=USERS), created_at=T0)
    before = read_pointer(root)

    def killed(self, data):
        raise KeyboardInterrupt("killed before the pointer swap")

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        for update in (stores._LocalPointerUpdate, store_s3._S3PointerUpdate):
            patched.setattr(update, "replace", killed)
        publish_tables(root, make_tables(3), {}, GateContext(active_user_ids=USERS), created_at=T1)
    assert read_pointer(root) == before and before["current"] == first.snapshot_id
    assert first_product(root) == "P02"  # shoppers still get the first version
    orphan = [s for s in list_snapshots(root) if s != first.snapshot_id]
    assert len(orphan) == 1  # complete, gated, never pointed at: not served
    assert history(root)[-1]["snapshot"] == first.snapshot_id

    # Running the step again repairs: the candidate is published by id with its recorded gate.
    assert publish(root, orphan[0])["current"] == orphan[0]
    assert first_product(root) == "P05"


def test_a_never_swapped_snapshot_is_not_served_and_is_prunable(root):
    served = snap(root, 0, T0)
    publish(root, served, gate_for(0))
    candidate = snap(root, 5, T1)  # written, never published
    assert Reader(root).get_recommendations("u01", 1)[0]["snapshot_id"] == served
    assert prune(root, keep=0) == [candidate]
    assert list_snapshots(root) == [served]
    assert first_product(root) == "P02"


def test_a_half_written_snapshot_is_invisible_then_swept(root):
    store = open_store(root)
    served = snap(root)
    publish(root, served, gate_for(0))
    half = "20111210T020000Z-deadbeef"
    # What a writer killed mid-write leaves: locally a hidden temporary folder, on S3 files
    # without their manifest (which is put last).
    if isinstance(store, LocalStore):
        leftover = f".tmp-{half}-1234abcd"
        (store.root / "snapshots" / leftover).mkdir()
    else:
        leftover = half
    store.replace_bytes(f"snapshots/{leftover}/user_recommendations.parquet", b"half a file")
    assert list_snapshots(root) == [served]
    with pytest.raises(SnapshotNotFound):
        publish(root, half, force=True)
    assert sweep_temp(root) == []  # young: perhaps a writer at work
    assert sweep_temp(root, older_than_s=-60) == [leftover]
    assert list_snapshots(root) == [served] and first_product(root) == "P02"


def test_overlays_are_written_served_and_pruned(root):
    base = snap(root)
    publish(root, base, gate_for(0))
    rows = make_tables(9)["user_recommendations"].filter(pl.col("user_id") == "u01")
    written = write_overlay(root, base, rows, as_of=datetime(2011, 12, 10), refreshed=1, files={}, gate={})
    set_overlay(root, written.overlay_id, base)
    assert first_product(root) == "P11" and first_product(root, "u02") == "P03"
    assert list_overlays(root) == [written.overlay_id]
    assert prune_overlays(root, served=written.overlay_id, keep=0, min_age_s=0) == []
    assert prune_overlays(root, served=None, keep=0, min_age_s=-60) == [written.overlay_id]
    assert list_overlays(root) == []


def test_a_stale_pointer_write_is_refused_on_s3(s3_root):
    first, second = snap(s3_root, 0, T0), snap(s3_root, 4, T1)
    publish(s3_root, first, gate_for(0))
    with _locked(s3_root) as slow:  # a rollback reads the pointer ...
        publish(s3_root, second, gate_for(4))  # ... a publish swaps it meanwhile ...
        slow.pointer["current"] = first
        with pytest.raises(PointerConflict, match="another publisher.*again"):
            _write_pointer(slow, {"action": "rollback"})  # ... so the slow write is refused
    assert read_pointer(s3_root)["current"] == second
    assert [e["action"] for e in history(s3_root)] == ["publish", "publish"]
    assert rollback(s3_root)["current"] == first  # run again: it starts from the new pointer


def test_two_first_publishes_cannot_both_win_on_s3(s3_root):
    first, second = snap(s3_root, 0, T0), snap(s3_root, 4, T1)
    with _locked(s3_root) as racing:  # read "nothing published" ...
        publish(s3_root, second, gate_for(4))
        racing.pointer["current"] = first
        with pytest.raises(PointerConflict):
            _write_pointer(racing, {"action": "publish"})  # ... If-None-Match: * refuses
    assert read_pointer(s3_root)["current"] == second


def test_the_s3_store_keeps_its_files_under_the_prefix(s3_root):
    sid = snap(s3_root)
    publish(s3_root, sid, gate_for(0))
    client = open_store(s3_root).client
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert f"shop/serving/snapshots/{sid}/manifest.json" in keys
    assert f"shop/serving/snapshots/{sid}/gate.json" in keys
    assert "shop/serving/CURRENT.json" in keys
    assert all(k.startswith("shop/serving/") for k in keys)
    [line] = [k for k in keys if k.startswith("shop/serving/history/")]
    body = client.get_object(Bucket=BUCKET, Key=line)["Body"].read()
    assert json.loads(body)["pointer"]["current"] == sid


def test_an_unusable_store_is_one_clear_error(monkeypatch, tmp_path):
    aws_env(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StoreError, match="AWS_ALLOW_HTTP=true"):
        read_pointer("s3://bucket/serving")
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    with pytest.raises(StoreError, match="cannot reach the object store.*AWS_ENDPOINT"):
        read_pointer("s3://bucket/serving")
    with pytest.raises(ServingError, match="only s3://"):
        read_pointer("gs://bucket/serving")
    s3_client.cache_clear()


def test_of_two_writers_of_one_snapshot_id_one_wins_on_s3(s3_root, monkeypatch):
    sid = snap(s3_root)
    # The second writer checked for the id before the first had put its manifest: the
    # manifest's own conditional put (If-None-Match: *) still refuses it.
    monkeypatch.setattr(store_s3.S3Store, "_exists", lambda self, key: False)
    with pytest.raises(SnapshotExists):
        snap(s3_root)
    assert list_snapshots(s3_root) == [sid]


def test_a_pointer_write_retried_after_its_answer_was_lost_is_no_conflict_on_s3(s3_root, monkeypatch):
    """botocore retries a PUT whose answer it lost; the retry's If-Match then fails against the
    first attempt's own write, which must count as done, not as another publisher's."""
    first = snap(s3_root)
    client = open_store(s3_root).client
    put = client.put_object

    def answer_lost(**kwargs):
        put(**kwargs)  # the write lands ...
        return put(**kwargs)  # ... and the retry of the same conditional write is refused

    with monkeypatch.context() as patched:
        patched.setattr(client, "put_object", answer_lost)
        assert publish(s3_root, first, gate_for(0))["current"] == first
    assert [e["action"] for e in history(s3_root)] == ["publish"]

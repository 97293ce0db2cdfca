"""serving/: snapshots, the quality gate, the publish pointer, canaries and the reader."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
from datetime import UTC, date, datetime

import polars as pl
import pytest
from recommendation_tables import USERS, make_tables

from serving.errors import PublishBlocked, ServingError, SnapshotExists, SnapshotNotFound
from serving.gate import GateContext, GateThresholds, evaluate_gate
from serving.publish import (
    abort_canary,
    history,
    promote_canary,
    prune,
    publish,
    publish_tables,
    read_gate,
    read_pointer,
    record_gate,
    rollback,
    start_canary,
    versions,
)
from serving.reader import Reader, canary_bucket
from serving.snapshots import (
    MANIFEST,
    list_snapshots,
    read_manifest,
    read_table,
    snapshot_dir,
    snapshots_dir,
    table_checksum,
    write_snapshot,
)

T0 = datetime(2011, 12, 9, 2, 0, 0, tzinfo=UTC)


def context(**overrides) -> GateContext:
    return GateContext(active_user_ids=USERS, **overrides)


def snap(root, offset=0, at=T0, **kwargs):
    return write_snapshot(
        root,
        make_tables(offset, **kwargs),
        {"partition_date": "2011-12-08", "model_fingerprint": "fp"},
        created_at=at,
    ).snapshot_id


def gated(root, snapshot_id):
    """The gate result computed on a snapshot's own tables."""
    tables = {
        name: read_table(root, snapshot_id, name) for name in read_manifest(root, snapshot_id).row_counts
    }
    return evaluate_gate(tables, context())


# snapshots ---------------------------------------------------------------------------------


def test_snapshot_is_complete_immutable_and_described(tmp_path):
    manifest = write_snapshot(
        tmp_path,
        make_tables(),
        {
            "partition_date": "2011-12-08",
            "embedding_version": 3,
            "model_fingerprint": "fp",
            "config": {"k": 10},
        },
        created_at=T0,
    )
    sid = manifest.snapshot_id
    assert sid.startswith("20111209T020000Z-") and len(sid) == len("20111209T020000Z-") + 8
    folder = snapshot_dir(tmp_path, sid)
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([MANIFEST, *(f"{t}.parquet" for t in make_tables())])
    on_disk = json.loads((folder / MANIFEST).read_text())
    assert on_disk["row_counts"]["user_recommendations"] == 200
    assert on_disk["partition_date"] == "2011-12-08" and on_disk["config"] == {"k": 10}
    assert on_disk["embedding_version"] == 3 and on_disk["model_fingerprint"] == "fp"
    assert set(on_disk["checksums"]) == set(make_tables())
    assert read_manifest(tmp_path, sid) == manifest
    assert list_snapshots(tmp_path) == [sid]
    assert not os.access(folder / "products.parquet", os.W_OK) or os.geteuid() == 0
    with pytest.raises(SnapshotExists):
        write_snapshot(tmp_path, make_tables(), {}, created_at=T0)
    assert read_table(tmp_path, sid, "user_recommendations").height == 200


def test_crash_mid_write_leaves_no_visible_snapshot(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("serving.store.os.rename", crash)  # the local rename lives in serving/store.py
    with pytest.raises(KeyboardInterrupt):
        write_snapshot(tmp_path, make_tables(), {}, created_at=T0)
    assert list_snapshots(tmp_path) == []
    assert list(snapshots_dir(tmp_path).iterdir()) == []  # the temp folder was cleaned up
    # A hard crash (no cleanup) leaves a hidden temp folder; a copied half folder has no manifest.
    (snapshots_dir(tmp_path) / ".tmp-20111209T020000Z-deadbeef-1234").mkdir()
    (snapshots_dir(tmp_path) / "20111209T020000Z-deadbeef").mkdir()
    assert list_snapshots(tmp_path) == []


def test_checksums_ignore_row_order_but_see_content(tmp_path):
    df = make_tables()["user_recommendations"]
    assert (
        table_checksum(df) == table_checksum(df.reverse()) == table_checksum(df.select(reversed(df.columns)))
    )
    assert table_checksum(df) != table_checksum(pl.concat([df, df.head(1)]))
    assert table_checksum(df) != table_checksum(df.with_columns(score=pl.col("score") * 1.0000001))
    shuffled = {name: t.sample(fraction=1.0, shuffle=True, seed=1) for name, t in make_tables().items()}
    a = write_snapshot(tmp_path, make_tables(), {}, created_at=T0)
    b = write_snapshot(tmp_path / "other", shuffled, {}, created_at=T0)
    assert a.checksums == b.checksums and a.snapshot_id == b.snapshot_id
    # Stable across versions and processes: pinned value (serving/checksum.py's rule).
    assert table_checksum(pl.DataFrame({"a": [1, 2], "b": ["x", None]})) == "57f3a6ae9814d9ea"
    # Hashed in slices of rows (bounded memory at 28M rows): the same checksum whatever the slices.
    assert {table_checksum(df, slice_rows=n) for n in (1, 2, 3, df.height + 1)} == {table_checksum(df)}
    empty = df.clear()
    assert table_checksum(empty, slice_rows=1) == table_checksum(empty)


def test_checksums_tell_apart_what_the_rows_hold():
    base = pl.DataFrame({"a": ["x", "y"], "b": ["y", "x"], "n": [1.0, 2.0]})
    different = [
        base.with_columns(a=pl.Series(["y", "x"]), b=pl.Series(["x", "y"])),  # values swapped between columns
        base.with_columns(a=pl.Series(["", "y"])),  # an empty string is not...
        base.with_columns(a=pl.Series(["x", None])),  # ...a null
        base.with_columns(n=pl.Series([1.0, None])),  # a null number is not 0 or NaN
        base.with_columns(n=pl.Series([1.0, 0.0])),
        base.with_columns(n=pl.Series([1.0, float("nan")])),
        base.with_columns(n=pl.Series([1, 2])),  # the same numbers as integers: another type
        base.rename({"n": "m"}),
        pl.concat([base, base]),  # duplicated rows
    ]
    checksums = {table_checksum(base), *(table_checksum(df) for df in different)}
    assert len(checksums) == len(different) + 1
    # Row order does not matter; dates, booleans and nested values are covered too.
    nested = pl.DataFrame({"d": [date(2011, 12, 9), None], "l": [[1, 2], None], "b": [True, False]})
    assert table_checksum(nested) == table_checksum(nested.reverse())
    assert table_checksum(nested) != table_checksum(nested.with_columns(l=pl.Series([[2, 1], None])))


def test_unknown_or_malformed_snapshot_ids_are_refused(tmp_path):
    with pytest.raises(SnapshotNotFound, match="shopguide versions"):
        read_manifest(tmp_path, "20111209T020000Z-00000000")
    with pytest.raises(SnapshotNotFound, match="not a snapshot id"):
        read_manifest(tmp_path, "../../etc")
    with pytest.raises(ServingError, match="missing"):
        write_snapshot(tmp_path, {"products": make_tables()["products"]}, {})


# gate ----------------------------------------------------------------------------------------


def test_gate_passes_on_good_data():
    result = evaluate_gate(
        make_tables(), context(current_recommendations=make_tables()["user_recommendations"])
    )
    assert result.passed, result.summary()
    assert result.check("overlap_with_current").observed == pytest.approx(1.0)
    assert "gate passed" in result.summary()


def test_gate_without_current_version_skips_overlap():
    check = evaluate_gate(make_tables(), context()).check("overlap_with_current")
    assert check.passed and check.observed is None and "skipped" in check.message


def failing(tables, ctx=None, thresholds=None):
    result = evaluate_gate(tables, ctx or context(), thresholds)
    assert not result.passed
    return {check.name for check in result.failed}, result


def test_gate_low_coverage():
    names, result = failing(make_tables(users=USERS[:15]))
    assert names == {"user_coverage"}
    assert result.check("user_coverage").observed == pytest.approx(0.75)
    assert "user_coverage: observed 0.75 (required >= 0.95)" in result.summary()


def test_gate_short_lists_and_empty_lists():
    names, _ = failing(make_tables(k=5))
    assert names == {"short_lists"}
    tables = make_tables()
    tables["user_recommendations"] = tables["user_recommendations"].with_columns(
        product_id=pl.when(pl.col("user_id") == "u03").then(None).otherwise(pl.col("product_id"))
    )
    names, _ = failing(tables, thresholds=GateThresholds(min_user_coverage=0.9))
    assert names == {"no_empty_lists"}


def test_gate_duplicates():
    tables = make_tables()
    ur = tables["user_recommendations"]
    tables["user_recommendations"] = ur.with_columns(
        product_id=pl.when((pl.col("user_id") == "u01") & (pl.col("rank") == 2))
        .then(pl.lit("P02"))  # u01 rank 1 is P02 already
        .otherwise(pl.col("product_id"))
    )
    names, result = failing(tables)
    assert names == {"no_duplicate_user_recommendations"}
    assert "u01 / P02" in result.summary()
    tables = make_tables()
    tables["similar_products"] = pl.concat([tables["similar_products"], tables["similar_products"].head(1)])
    assert failing(tables)[0] == {"no_duplicate_similar_products"}
    tables = make_tables()
    pop = tables["popular_products"]
    tables["popular_products"] = pop.with_columns(
        rank=pl.when(pl.col("rank") == 2).then(1).otherwise(pl.col("rank"))
    )
    assert failing(tables)[0] == {"no_duplicate_popular_products"}


def test_gate_leaked_excluded_product_and_purchased_pair():
    names, result = failing(make_tables(), context(excluded_product_ids=["P05"]))
    assert names == {"no_excluded_products"}
    assert "P05" in result.summary()
    pairs = pl.DataFrame({"user_id": ["u00", "u09"], "product_id": ["P01", "P39"]})  # u00 rank 1 = P01
    names, result = failing(make_tables(), context(excluded_pairs=pairs))
    assert names == {"no_excluded_pairs"} and result.check("no_excluded_pairs").observed == 1


def test_gate_self_similar_and_invalid_source():
    tables = make_tables()
    tables["similar_products"] = tables["similar_products"].with_columns(
        similar_product_id=pl.when((pl.col("product_id") == "P03") & (pl.col("rank") == 5))
        .then(pl.lit("P03"))
        .otherwise(pl.col("similar_product_id"))
    )
    assert failing(tables)[0] == {"no_self_similar"}
    tables = make_tables()
    tables["user_recommendations"] = tables["user_recommendations"].with_columns(source=pl.lit("magic"))
    assert "valid_values" in failing(tables)[0]


def test_gate_too_many_fallbacks():
    names, result = failing(make_tables(source="fallback_segment"))
    assert names == {"fallback_share"} and result.check("fallback_share").observed == 1.0


def test_gate_low_overlap_with_current():
    current = make_tables(offset=20)["user_recommendations"]  # disjoint top-10 sets
    names, result = failing(make_tables(), context(current_recommendations=current, current_snapshot_id="X"))
    assert names == {"overlap_with_current"}
    assert result.check("overlap_with_current").observed == 0.0


def test_gate_missing_table():
    tables = make_tables()
    del tables["similar_products"]
    assert failing(tables)[0] == {"tables_present"}


# publish, rollback, canary ------------------------------------------------------------------


def test_publish_blocked_on_failed_gate_and_forced_publish_is_recorded(tmp_path):
    sid = snap(tmp_path, users=USERS[:10])
    gate = gated(tmp_path, sid)
    with pytest.raises(PublishBlocked, match="user_coverage") as blocked:
        publish(tmp_path, sid, gate)
    assert "--force" in str(blocked.value)
    assert read_pointer(tmp_path)["current"] is None
    pointer = publish(tmp_path, sid, gate, force=True)
    assert pointer["current"] == sid
    assert history(tmp_path)[-1] == {
        **history(tmp_path)[-1],
        "action": "publish",
        "forced": True,
        "gate_passed": False,
    }
    assert read_gate(tmp_path, sid)["forced"] is True
    [row] = versions(tmp_path)
    assert row["is_current"] and row["gate_passed"] is False and row["forced"]
    assert row["partition_date"] == "2011-12-08" and row["row_counts"]["user_recommendations"] == 100


def test_publish_refuses_gate_of_other_data_and_ungated_snapshots(tmp_path):
    sid = snap(tmp_path)
    other = evaluate_gate(make_tables(users=USERS[:3]), context())
    with pytest.raises(ServingError, match="other data"):
        publish(tmp_path, sid, other, force=True)
    with pytest.raises(PublishBlocked, match="never gated"):
        publish(tmp_path, sid)
    with pytest.raises(SnapshotNotFound, match="shopguide versions"):
        publish(tmp_path, "20000101T000000Z-00000000", other)


def test_publish_tables_writes_gates_and_publishes(tmp_path):
    first = publish_tables(
        tmp_path, make_tables(), {"partition_date": "2011-12-08"}, context(), created_at=T0
    )
    assert first.published and read_pointer(tmp_path)["current"] == first.snapshot_id
    # Tomorrow's lists are unrelated to today's: written, gated, recorded, not published.
    with pytest.raises(PublishBlocked, match="overlap_with_current") as blocked:
        publish_tables(tmp_path, make_tables(offset=20), {}, context(), created_at=T0.replace(day=10))
    [blocked_id] = [s for s in list_snapshots(tmp_path) if s != first.snapshot_id]
    assert blocked_id in str(blocked.value)
    assert read_gate(tmp_path, blocked_id)["passed"] is False
    assert read_pointer(tmp_path)["current"] == first.snapshot_id
    second = publish_tables(
        tmp_path, make_tables(offset=1), {}, context(), canary_percent=10, created_at=T0.replace(day=11)
    )
    assert read_pointer(tmp_path)["canary"]["snapshot"] == second.snapshot_id


def test_rollback_to_previous_to_given_id_and_unknown(tmp_path):
    a, b, c = (snap(tmp_path, offset=i, at=T0.replace(hour=i)) for i in range(3))
    for sid in (a, b, c):
        publish(tmp_path, sid, gated(tmp_path, sid))
    assert read_pointer(tmp_path)["previous"] == [b, a]
    pointer = rollback(tmp_path)
    assert pointer["current"] == b and pointer["previous"] == [a]
    pointer = rollback(tmp_path, to=c)
    assert pointer["current"] == c and history(tmp_path, limit=1)[0]["action"] == "rollback"
    with pytest.raises(SnapshotNotFound, match="shopguide versions"):
        rollback(tmp_path, to="20000101T000000Z-00000000")
    with pytest.raises(ServingError, match="already the current"):
        rollback(tmp_path, to=c)
    bad = snap(tmp_path, offset=3, at=T0.replace(hour=5), users=USERS[:5])
    with pytest.raises(PublishBlocked, match="never gated"):
        rollback(tmp_path, to=bad)
    record_gate(tmp_path, bad, gated(tmp_path, bad))
    with pytest.raises(PublishBlocked, match="gate failed"):
        rollback(tmp_path, to=bad)
    assert rollback(tmp_path, to=bad, force=True)["current"] == bad
    assert history(tmp_path, limit=1)[0]["forced"] is True and read_gate(tmp_path, bad)["forced"] is True


def test_canary_start_ramp_promote_and_abort(tmp_path):
    a, b = snap(tmp_path, 0, T0), snap(tmp_path, 1, T0.replace(hour=3))
    with pytest.raises(ServingError, match="nothing is published"):
        start_canary(tmp_path, b, 10, gated(tmp_path, b))
    publish(tmp_path, a, gated(tmp_path, a))
    with pytest.raises(ServingError, match="1 to 99"):
        start_canary(tmp_path, b, 100, gated(tmp_path, b))
    canary = start_canary(tmp_path, b, 10, gated(tmp_path, b))["canary"]
    assert canary == {"snapshot": b, "percent": 10, "salt": b}
    assert start_canary(tmp_path, b, 50)["canary"]["salt"] == b  # ramp up keeps the salt
    reader = Reader(tmp_path)
    routed = {u: reader.version_for(u) for u in USERS}
    assert routed == {u: (b if canary_bucket(u, b) < 50 else a) for u in USERS}
    assert reader.get_recommendations(USERS[0])[0]["snapshot_id"] == routed[USERS[0]]
    assert {r["is_canary"] for r in versions(tmp_path) if r["id"] == b} == {True}
    with pytest.raises(ServingError, match="canary .* is running"):
        publish(tmp_path, a, gated(tmp_path, a))
    abort_canary(tmp_path)
    assert {reader.version_for(u) for u in USERS} == {a}
    with pytest.raises(ServingError, match="no canary"):
        abort_canary(tmp_path)
    start_canary(tmp_path, b, 5)
    pointer = promote_canary(tmp_path)
    assert pointer["current"] == b and pointer["canary"] is None and pointer["previous"] == [a]


def test_canary_bucket_is_stable_and_fair():
    assert [canary_bucket(u, "salt") for u in ("u1", "12346", "guest-x")] == EXPECTED_BUCKETS
    ids = [str(i) for i in range(10_000)]
    share = sum(canary_bucket(u, "s1") < 20 for u in ids) / len(ids)
    assert 0.18 <= share <= 0.22
    assert sum(canary_bucket(u, "s1") < 5 for u in ids) / len(ids) == pytest.approx(0.05, abs=0.02)


EXPECTED_BUCKETS = [9, 4, 88]


def _buckets_in_child(queue):
    queue.put([canary_bucket(u, "salt") for u in ("u1", "12346", "guest-x")])


def test_canary_bucket_same_in_another_process():
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: another hash seed
    queue = ctx.Queue()
    child = ctx.Process(target=_buckets_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == [canary_bucket(u, "salt") for u in ("u1", "12346", "guest-x")]
    child.join(timeout=60)


def test_prune_keeps_pointer_targets(tmp_path):
    ids = [snap(tmp_path, i, T0.replace(hour=i)) for i in range(4)]
    publish(tmp_path, ids[0], gated(tmp_path, ids[0]))
    assert prune(tmp_path, keep=1) == ids[1:3]
    assert list_snapshots(tmp_path) == [ids[0], ids[3]]


# reader --------------------------------------------------------------------------------------


def test_reader_before_anything_is_published(tmp_path):
    with pytest.raises(ServingError, match="nothing is published"):
        Reader(tmp_path).get_recommendations("u01")


def test_reader_recommendations_similar_popular_and_fallbacks(tmp_path):
    sid = snap(tmp_path)
    publish(tmp_path, sid, gated(tmp_path, sid))
    reader = Reader(tmp_path)
    rows = reader.get_recommendations("u01", k=3)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0] == {
        "rank": 1,
        "product_id": "P02",
        "title": "Product 2",
        "category_path": None,
        "price": 2.5,
        "score": 1.0,
        "content_score": 0.5,
        "graph_score": 0.25,
        "popularity_score": None,
        "reason": "v0",
        "source": "personal",
        "snapshot_id": sid,
    }
    assert len(reader.get_recommendations("u01", k=50)) == 10
    unknown = reader.get_recommendations("stranger", k=4)
    longest = reader.get_popular(k=4, window_days=30)
    assert [r["product_id"] for r in unknown] == [r["product_id"] for r in longest]
    assert {r["source"] for r in unknown} == {"fallback_global"}
    assert unknown[0]["reason"] == "popular in all over 30 days" and [r["rank"] for r in unknown] == [
        1,
        2,
        3,
        4,
    ]
    assert reader.get_recommendations(None, k=2)[0]["source"] == "fallback_global"

    similar = reader.get_similar("P03", k=2)
    assert [r["product_id"] for r in similar] == ["P04", "P05"] and similar[0]["for_product_id"] == "P03"
    assert reader.get_similar("P39") == []

    assert reader.get_popular(k=3, window_days=7)[0]["window_days"] == 7
    assert reader.get_popular(category="Home", k=2)[0]["segment"] == "Home"
    assert reader.get_popular(country="France", k=1)[0]["segment_type"] == "country"
    assert reader.get_popular(list="trending", k=1)[0]["list"] == "trending"
    assert reader.get_popular(category="Garden") == []
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ServingError, match="k must be"):
            reader.get_recommendations("u01", k=bad)
    with pytest.raises(ServingError, match="list must be"):
        reader.get_popular(list="hot")
    assert reader.version_for("u01") == sid


def test_readers_never_see_a_mix_while_publishers_flip(tmp_path):
    """Publishes alternate A/B 200 times while reader threads query one user: every answer is
    exactly A's list or exactly B's list (titles included), never a mix, never an error."""
    a, b = snap(tmp_path, 0, T0), snap(tmp_path, 7, T0.replace(hour=3))
    gates = {a: gated(tmp_path, a), b: gated(tmp_path, b)}
    publish(tmp_path, a, gates[a])
    expected = {sid: _list_of(tmp_path, sid) for sid in (a, b)}
    assert expected[a] != expected[b]
    errors, seen, stop = [], {a: 0, b: 0}, threading.Event()

    def read_loop(fresh_reader: bool):
        reader = Reader(tmp_path)
        while not stop.is_set():
            try:
                if fresh_reader:  # no cache: every call loads from disk during the flips
                    reader = Reader(tmp_path)
                rows = reader.get_recommendations("u05", k=10)
                sid = rows[0]["snapshot_id"]
                if [(r["snapshot_id"], r["product_id"], r["title"], r["reason"]) for r in rows] != expected[
                    sid
                ]:
                    errors.append(f"mixed answer: {rows}")
                seen[sid] += 1
            except Exception as error:  # any error fails the test
                errors.append(repr(error))

    readers = [threading.Thread(target=read_loop, args=(i == 0,)) for i in range(3)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # switch threads often: more interleavings, and the publisher
    for thread in readers:  # is not starved waiting for the GIL after each fsync
        thread.start()
    deadline = time.monotonic() + 6
    try:
        for i in range(200):
            sid = b if i % 2 == 0 else a
            publish(tmp_path, sid, gates[sid])
            if time.monotonic() > deadline:
                break
    finally:
        stop.set()
        sys.setswitchinterval(switch)
        for thread in readers:
            thread.join(timeout=10)
    assert not errors, errors[:3]
    assert seen[a] > 0 and seen[b] > 0, seen


def _list_of(root, sid):
    tables = {name: read_table(root, sid, name) for name in ("user_recommendations", "products")}
    rows = tables["user_recommendations"].filter(pl.col("user_id") == "u05").sort("rank")
    titles = dict(tables["products"].select("product_id", "title").iter_rows())
    return [(sid, p, titles[p], reason) for p, reason in rows.select("product_id", "reason").iter_rows()]


def test_gate_thresholds_come_from_the_recommender_resource_and_are_validated():
    from assets.resources import RecommenderSettings, SettingsError
    from serving.gate import GateThresholds

    settings = RecommenderSettings(gate={"max_fallback_share": 0.2, "min_list_length": 5})
    assert settings.gate_thresholds() == GateThresholds(max_fallback_share=0.2, min_list_length=5)
    with pytest.raises(
        SettingsError, match=r"^recommender\.gate\.max_fallback_share: .*less than or equal to 1"
    ):
        RecommenderSettings(gate={"max_fallback_share": 1.5})
    with pytest.raises(ValueError, match="min_list_length"):
        GateThresholds(min_list_length=0)

"""Intraday overlays on a snapshot: atomic under concurrent readers, dropped by publish,
rollback and promotion, gated on their own rows, served by the reader library and the API."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import polars as pl
import pytest
from fastapi.testclient import TestClient
from recommendation_tables import USERS, make_tables

from serving.api import SNAPSHOT_HEADER, create_app
from serving.errors import ServingError
from serving.gate import GateContext, evaluate_gate
from serving.live import LiveReader
from serving.overlays import list_overlays, prune_overlays, read_overlay_manifest, write_overlay
from serving.publish import (
    drop_overlay,
    history,
    promote_canary,
    publish,
    read_pointer,
    rollback,
    set_overlay,
    start_canary,
)
from serving.reader import Reader
from serving.snapshots import write_snapshot

OVERLAID = ["u01", "u02"]
AS_OF = datetime(2011, 12, 10)


def snapshot(root, offset: int) -> str:
    return write_snapshot(root, make_tables(offset), {"partition_date": "2011-12-08"}).snapshot_id


def overlay(root, base: str, version: int, users=OVERLAID) -> str:
    """An overlay whose lists are version `version` of make_tables (reason "v<version>")."""
    rows = make_tables(version)["user_recommendations"].filter(pl.col("user_id").is_in(users))
    written = write_overlay(root, base, rows, as_of=AS_OF, refreshed=len(users), files={}, gate={})
    set_overlay(root, written.overlay_id, base)
    return written.overlay_id


def expected(version: int, user: str) -> list[str]:
    rows = make_tables(version)["user_recommendations"].filter(pl.col("user_id") == user).sort("rank")
    return rows["product_id"].to_list()


@pytest.fixture
def published(tmp_path):
    root = tmp_path / "serving"
    first, second = snapshot(root, 0), snapshot(root, 100)
    publish(root, first, force=True)
    publish(root, second, force=True)
    return root, first, second


def test_the_overlay_answers_its_shoppers_and_the_snapshot_everyone_else(published):
    root, _, second = published
    overlay_id = overlay(root, second, 7)
    reader = Reader(root)
    rows = reader.get_recommendations("u01", 10)
    assert [r["product_id"] for r in rows] == expected(7, "u01")
    assert {r["reason"] for r in rows} == {"v7"} and {r["snapshot_id"] for r in rows} == {second}
    assert [r["product_id"] for r in reader.get_recommendations("u05", 10)] == expected(100, "u05")
    manifest = read_overlay_manifest(root, overlay_id)
    assert manifest.snapshot_id == second and manifest.user_ids == OVERLAID
    assert read_pointer(root)["overlay"] == {"id": overlay_id, "snapshot": second}


def test_readers_see_the_old_overlay_or_the_new_never_half(published):
    # Every overlay n gives u01 and u02 the lists of version n. A reader's answer must be one
    # version's whole list, versions never go back for one reader, and others keep the snapshot.
    root, _, second = published
    overlay(root, second, 1)
    live = LiveReader(root, poll_s=0.005)
    readers = {"reader": Reader(root), "live": live}
    stop, problems, seen = threading.Event(), [], {name: set() for name in readers}

    def read(name, reader):
        last = 0
        while not stop.is_set():
            for user in OVERLAID:
                rows = reader.get_recommendations(user, 10)
                versions = {r["reason"] for r in rows}
                if len(versions) != 1:
                    problems.append(f"{name}: a mix of {versions}")
                    continue
                version = int(versions.pop()[1:])
                if [r["product_id"] for r in rows] != expected(version, user):
                    problems.append(f"{name}: half a list of v{version}")
                if version < last:
                    problems.append(f"{name}: went back from v{last} to v{version}")
                last = max(last, version)
                seen[name].add(version)
            if {r["reason"] for r in reader.get_recommendations("u05", 10)} != {"v100"}:
                problems.append(f"{name}: a shopper outside the overlay changed")

    threads = [threading.Thread(target=read, args=item) for item in readers.items() for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for version in range(2, 40):
            overlay(root, second, version)
            time.sleep(0.01)
    finally:
        time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        live.close()
    assert not problems, problems[:5]
    # The readers did see overlays switch under them (the test would prove nothing otherwise).
    assert all(len(versions) > 3 for versions in seen.values()), seen


def test_rollback_publish_and_promotion_drop_the_overlay(published):
    root, first, second = published
    dropped = overlay(root, second, 7)
    reader = Reader(root)
    rollback(root, force=True)
    assert read_pointer(root)["overlay"] is None
    assert history(root)[-1]["dropped_overlay"] == dropped
    # The rolled-back-to snapshot's own lists, for the overlaid shoppers too.
    assert [r["product_id"] for r in reader.get_recommendations("u01", 10)] == expected(0, "u01")
    with pytest.raises(ServingError, match="is current now"):
        set_overlay(root, dropped, second)  # built on another snapshot: refused
    overlay(root, first, 8)
    publish(root, second, force=True)  # the nightly run: its snapshot holds the day's events
    assert read_pointer(root)["overlay"] is None
    assert [r["product_id"] for r in reader.get_recommendations("u01", 10)] == expected(100, "u01")
    overlay(root, second, 9)
    third = snapshot(root, 200)
    start_canary(root, third, 10, force=True)
    promote_canary(root)
    assert read_pointer(root)["overlay"] is None
    overlay(root, third, 10)
    drop_overlay(root, reason="test")
    assert read_pointer(root)["overlay"] is None
    with pytest.raises(ServingError, match="no overlay"):
        drop_overlay(root)


def test_a_canary_shopper_sees_the_canary_not_the_overlay(published):
    root, _, second = published
    overlay(root, second, 7, users=USERS)
    canary = snapshot(root, 300)
    start_canary(root, canary, 50, force=True)
    reader = Reader(root)
    for user in USERS:
        rows = reader.get_recommendations(user, 10)
        routed = reader.version_for(user)
        assert {r["reason"] for r in rows} == ({"v300"} if routed == canary else {"v7"})


def test_old_overlays_are_pruned_but_never_the_served_or_recent_ones(published):
    root, _, second = published
    ids = [overlay(root, second, version) for version in range(1, 9)]
    assert prune_overlays(root, ids[-1]) == []  # all recent: a reader may still be on them
    removed = prune_overlays(root, ids[0], keep=2, min_age_s=0)
    assert ids[0] not in removed and set(removed) == set(ids[1:6])
    assert list_overlays(root) == [ids[0], *ids[6:]]


def test_the_gate_on_an_overlay_checks_its_rows_only(published):
    rows = make_tables(7)["user_recommendations"].filter(pl.col("user_id").is_in(OVERLAID))
    context = GateContext(active_user_ids=OVERLAID)
    scope = ("user_recommendations",)
    assert evaluate_gate({"user_recommendations": rows}, context, scope=scope).passed
    # The whole-snapshot gate wants every table: the scope is what lets an overlay through.
    assert not evaluate_gate({"user_recommendations": rows}, context).check("tables_present").passed
    bought = rows.filter(pl.col("user_id") == "u01", pl.col("rank") == 1).select("user_id", "product_id")
    leaked = evaluate_gate(
        {"user_recommendations": rows},
        GateContext(active_user_ids=OVERLAID, excluded_pairs=bought),
        scope=scope,
    )
    assert [check.name for check in leaked.failed] == ["no_excluded_pairs"]
    with pytest.raises(ValueError, match="unknown gate scope"):
        evaluate_gate({}, context, scope=("products",))


def test_the_api_serves_the_overlay_and_names_it(published):
    root, _, second = published
    app = create_app(root, search=lambda *args: [], poll_s=0.02)
    with TestClient(app) as client:
        plain = client.get("/v1/users/u01/recommendations")
        assert "X-Overlay-Id" not in plain.headers and "overlay_id" not in plain.json()
        overlay_id = overlay(root, second, 7)
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["overlay"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        answer = client.get("/v1/users/u01/recommendations", params={"k": 10})
        assert answer.headers["X-Overlay-Id"] == answer.json()["overlay_id"] == overlay_id
        assert answer.headers[SNAPSHOT_HEADER] == second
        assert [item["product_id"] for item in answer.json()["items"]] == expected(7, "u01")
        other = client.get("/v1/users/u05/recommendations", params={"k": 10}).json()
        assert [item["product_id"] for item in other["items"]] == expected(100, "u05")

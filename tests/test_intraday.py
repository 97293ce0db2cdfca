"""The intraday refresh end to end, through Dagster (sensor → intraday_job) on a small
generated shop: only the shoppers with new events are recomputed, their lists are the ones
the next nightly run over the same log gives them, a purchase made today leaves the list at
once (repurchase off), the overlay is served and the nightly publish drops it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import orjson
import polars as pl
import pytest
from dagster import DagsterInstance, RunRequest, SkipReason

from assets.intraday import pending, refresh_active_shoppers
from serving import serving_root
from serving.overlays import read_overlay_manifest, read_overlay_rows
from serving.publish import read_pointer
from serving.reader import Reader
from serving.snapshots import list_snapshots, read_table
from shopguide.runner import run_range
from warehouse.landing import write_jsonl

pytestmark = pytest.mark.integration

START, LAST = date(2024, 1, 1), date(2024, 1, 6)
TODAY = LAST + timedelta(days=1)
SETTINGS = {"tables": {"allow_repurchase": False}, "override_champion_gate": True}


def event(n, kind, user, product, minute, country="United Kingdom"):
    record = {
        "event_id": f"intraday-{n}",
        "event_type": kind,
        "occurred_at": (datetime.combine(TODAY, datetime.min.time()) + timedelta(minutes=minute)).isoformat()
        + "Z",
        "user_id": user,
        "session_id": f"s-{user or 'guest'}-{minute // 30}",
        "product_id": product,
        "properties": {"country": country},
    }
    if kind in ("purchase", "add_to_cart"):
        record.update(quantity=1, price=2.5)
    return orjson.dumps(record)


def land(home, name, records) -> None:
    write_jsonl(home.landing / TODAY.isoformat() / name, records)


@pytest.fixture(scope="module")
def shop(tmp_path_factory, dbt_manifest):
    """A shop whose nightly run published the snapshot of LAST (module-wide: it takes minutes)."""
    from shopguide.sources.synthetic import SyntheticConfig, generate

    monkeypatch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("intraday")
    monkeypatch.setenv("SHOPGUIDE_HOME", str(root / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "home" / "dagster"))
    monkeypatch.setenv("SHOPGUIDE_EMBEDDING_MODEL", "hashing:32")
    monkeypatch.setenv("SHOPGUIDE_SEARCH_MODEL", "hashing:32")
    from core.settings import Paths

    home = Paths.from_env().ensure()
    generate(home.landing, SyntheticConfig(events=12_000, days=(LAST - START).days + 1, start_date=START))
    for folder in home.landing.iterdir():  # late events land after LAST: not part of this shop
        if folder.is_dir() and date.fromisoformat(folder.name) > LAST:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
    outcome = run_range(home, START, LAST, recommender=SETTINGS)
    assert outcome.success, outcome
    yield home
    monkeypatch.undo()


def test_intraday_lists_equal_the_next_nightly_and_drop_what_was_just_bought(shop):
    home = shop
    root = serving_root(home)
    base = read_pointer(root)["current"]
    published = read_table(root, base, "user_recommendations")
    personal = published.filter(pl.col("source") == "personal")
    shoppers = personal["user_id"].unique().sort().to_list()
    products = published["product_id"].unique().sort().to_list()
    buyer = shoppers[0]
    bought = personal.filter(pl.col("user_id") == buyer, pl.col("rank") == 1)["product_id"][0]

    # Micro-batch 1, through Dagster: the sensor asks for a run, intraday_job makes the overlay.
    first = shoppers[1:4]
    land(home, "batch-1.jsonl", [event(i, "view", u, products[i], i) for i, u in enumerate(first)])
    from orchestration.definitions import defs
    from orchestration.sensors import intraday_run_request

    assert isinstance(intraday_run_request(home), RunRequest)
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("intraday_job").execute_in_process(instance=instance)
    assert result.success
    assert isinstance(intraday_run_request(home), SkipReason)  # nothing new any more
    overlay_1 = read_pointer(root)["overlay"]
    assert overlay_1["snapshot"] == base
    rows_1 = read_overlay_rows(root, overlay_1["id"])
    assert sorted(rows_1["user_id"].unique()) == first

    # Micro-batch 2: a purchase of the buyer's first pick, 30 shoppers' views and carts (one
    # of batch 1 among them), a shopper never seen before, and a guest.
    second = [buyer, first[0], *shoppers[10:40]]
    records = [event(100, "purchase", buyer, bought, 60)]
    for i, user in enumerate(second[1:]):
        records.append(event(200 + i, "view", user, products[(7 * i) % len(products)], 61 + i))
        records.append(event(300 + i, "add_to_cart", user, products[(11 * i) % len(products)], 62 + i))
    records += [event(400, "view", "U-NEW-1", products[3], 70), event(401, "view", None, products[4], 71)]
    land(home, "batch-2.jsonl", records)
    assert pending(home) is not None
    outcome = refresh_active_shoppers(home)
    assert outcome.status == "published", outcome.summary()
    refreshed = sorted([*second, "U-NEW-1"])
    assert outcome.refreshed == len(refreshed)  # only the shoppers with new events
    overlay = read_overlay_manifest(root, outcome.overlay_id)
    assert overlay.user_ids == sorted({*first, *refreshed})
    rows = read_overlay_rows(root, outcome.overlay_id)
    untouched = sorted(set(first) - set(second))
    carried = rows.filter(pl.col("user_id").is_in(untouched))
    assert carried.equals(rows_1.filter(pl.col("user_id").is_in(untouched)))  # carried over as they were

    # The purchase left the buyer's list at once, and the reader serves the overlay.
    buyer_rows = rows.filter(pl.col("user_id") == buyer)
    assert buyer_rows.height > 0 and bought not in buyer_rows["product_id"].to_list()
    served = Reader(root).get_recommendations(buyer, 50)
    assert [r["product_id"] for r in served] == buyer_rows.sort("rank")["product_id"].to_list()
    assert rows.filter(pl.col("user_id") == "U-NEW-1").height > 0

    # The next nightly run over the same log gives the refreshed shoppers the same lists, and
    # its publish drops the overlay.
    nightly = run_range(home, TODAY, TODAY, recommender=SETTINGS)
    assert nightly.success, nightly
    pointer = read_pointer(root)
    assert pointer["current"] == list_snapshots(root)[-1] != base
    assert pointer["overlay"] is None
    night = read_table(root, pointer["current"], "user_recommendations")
    mine = rows.filter(pl.col("user_id").is_in(refreshed)).sort("user_id", "rank")
    theirs = night.filter(pl.col("user_id").is_in(refreshed)).sort("user_id", "rank").select(mine.columns)
    assert mine.drop("score").equals(theirs.drop("score"))
    assert (mine["score"] - theirs["score"]).abs().max() < 1e-9
    assert Reader(root).get_recommendations(buyer, 50)[0]["snapshot_id"] == pointer["current"]

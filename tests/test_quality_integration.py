"""The real Dagster run: a deliberately corrupted landing day fails its expectation, the
blocking check stops everything downstream, and the storefront keeps its version; a
warning shows without blocking.

The corruption passes the envelope (warehouse/envelope.py accepts prices up to 1e6), so it
reaches the event log; only the data-quality suites can catch it.
"""

from datetime import date

import orjson
import pytest

from serving import serving_root
from serving.publish import current_snapshot
from serving.snapshots import list_snapshots
from shopguide.runner import run_range
from shopguide.sources.synthetic import SyntheticConfig, generate
from warehouse.store import connect

pytestmark = pytest.mark.integration

D1, LAST_GOOD = date(2024, 1, 1), date(2024, 1, 7)
BAD_PRICE_DAY, UNKNOWN_PRODUCTS_DAY = date(2024, 1, 9), date(2024, 1, 10)


def query(paths, sql, params=()):
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def land(paths, day: date, records: list[dict]) -> None:
    folder = paths.landing / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shop.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")


def shopping(day: date, n: int, products: list[str], users: list[str], prefix: str) -> list[dict]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "event_type": "view",
            "occurred_at": f"{day.isoformat()}T10:{i % 60:02d}:00Z",
            "user_id": users[i % len(users)],
            "session_id": f"{prefix}-s{i % 17}",
            "product_id": products[i % len(products)],
        }
        for i in range(n)
    ]


def test_a_corrupted_partition_fails_its_expectation_and_blocks_the_publish(home, dbt_manifest):
    generate(home.landing, SyntheticConfig(events=20_000, days=4, start_date=D1))
    good = run_range(home, D1, LAST_GOOD)
    assert good.success, good
    root = serving_root(home)
    published, snapshots = current_snapshot(root), list_snapshots(root)
    assert published is not None
    key = f"{D1}..{LAST_GOOD}"
    checked, failed = query(
        home,
        "select count(*), count(*) filter (where not success) from data_quality_results "
        "where run_id = ? and severity = 'error'",
        [good.run_id],
    )[0]
    assert checked > 30 and failed == 0
    suites = {
        r[0]
        for r in query(home, "select distinct suite from data_quality_results where partition_key = ?", [key])
    }
    assert suites == {
        "raw_events",
        "raw_events_volume",
        "events",
        "products",
        "embeddings",
        # the publish gate's suites on the candidate tables
        "user_recommendations",
        "similar_products",
        "popular_products",
    }

    products = [r[0] for r in query(home, "select product_id from dim_products order by 1 limit 20")]
    users = [r[0] for r in query(home, "select user_id from dim_users order by 1 limit 20")]

    # 1. An implausible price (the envelope's limit is 1e6; this shop's is 1e5): the raw_events
    #    check blocks dbt, the vectors and the publish.
    bad_day = shopping(BAD_PRICE_DAY, 200, products, users, "bad")
    bad_day.append(
        {
            "event_id": "bad-purchase",
            "event_type": "purchase",
            "occurred_at": f"{BAD_PRICE_DAY}T11:00:00Z",
            "user_id": users[0],
            "session_id": "bad-s0",
            "product_id": products[0],
            "quantity": 1,
            "price": 500_000.0,
            "currency": "EUR",
        }
    )
    land(home, BAD_PRICE_DAY, bad_day)
    outcome = run_range(home, BAD_PRICE_DAY, BAD_PRICE_DAY)
    assert not outcome.success
    assert outcome.failed_checks == ["raw_events:gx_expectations"], outcome
    assert query(home, "select count(*) from raw_events where _partition_date = ?", [BAD_PRICE_DAY]) == [
        (201,)
    ]
    assert query(home, "select count(*) from fct_events where landed_on = ?", [BAD_PRICE_DAY]) == [
        (0,)
    ]  # dbt never ran
    assert current_snapshot(root) == published and list_snapshots(root) == snapshots
    assert query(
        home,
        "select suite, expectation, severity, observed_value from data_quality_results "
        "where run_id = ? and not success and severity = 'error'",
        [outcome.run_id],
    ) == [
        (
            "raw_events",
            "expect_column_values_to_be_between(price, 0..100000)",
            "error",
            "1 of 201 rows unexpected (200 null, not judged), e.g. 500000 ×1",
        )
    ]

    # 2. Events for products the catalog never listed: a warning (days may run before their
    #    catalog day), visible on the check and in the history, and nothing is blocked.
    unknown = shopping(UNKNOWN_PRODUCTS_DAY, 100, products, users, "u1")
    unknown += shopping(UNKNOWN_PRODUCTS_DAY, 20, ["NEVER-LISTED-1", "NEVER-LISTED-2"], users, "u2")
    land(home, UNKNOWN_PRODUCTS_DAY, unknown)
    outcome = run_range(home, UNKNOWN_PRODUCTS_DAY, UNKNOWN_PRODUCTS_DAY)
    assert not [c for c in outcome.failed_checks if "gx_" in c], outcome
    assert "fct_events:gx_warnings" in outcome.warnings
    failures = query(
        home,
        "select severity, expectation, observed_value from data_quality_results "
        "where run_id = ? and suite = 'events' and not success",
        [outcome.run_id],
    )
    assert [f[:2] for f in failures] == [("warn", "expect_column_values_to_be_null(unknown_product_id)")]
    assert failures[0][2].startswith("20 of 120 rows unexpected") and "NEVER-LISTED-1 ×10" in failures[0][2]
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.get() as instance:  # downstream of fct_events ran in this run
        latest = instance.get_latest_materialization_event(AssetKey("user_embeddings"))
    assert latest is not None and latest.run_id == outcome.run_id

    index = home.reports / "data_docs" / "index.html"
    assert index.exists() and "raw_events" in index.read_text()

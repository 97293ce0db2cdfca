"""The exposure-log dbt models on a hand-built event log: exposures, clicks, last-touch
attribution within the window, the per-arm daily table, and the dbt unit and data tests.

Runs dbt itself (no Dagster): ingestion through the warehouse functions, then `dbt build`
of the whole project, so the existing models' tests run beside the exposure log.
"""

from datetime import date

import pytest

from tests.exposure_log import build_warehouse, dbt
from warehouse.landing import write_jsonl
from warehouse.store import connect

pytestmark = pytest.mark.integration

D1, D2 = date(2024, 5, 1), date(2024, 5, 2)


def shown(event_id, at, user, arm, products, snapshot=None, surface="home"):
    return {
        "event_id": event_id,
        "event_type": "recommendation_shown",
        "occurred_at": at,
        "user_id": user,
        "session_id": f"s-{user}",
        "properties": {
            "snapshot_id": snapshot or ("snap-new" if arm == "canary" else "snap-old"),
            "arm": arm,
            "surface": surface,
            "products": products,
        },
    }


def shop(event_id, event_type, at, user, product, quantity=1, price=None):
    return {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": at,
        "user_id": user,
        "session_id": f"s-{user}",
        "product_id": product,
        "quantity": quantity,
        "price": price,
    }


LOG = {
    D1: [
        shown("x1", "2024-05-01T10:00:00Z", "u1", "canary", ["p1", "P2"]),
        {
            "event_id": "k1",
            "event_type": "recommendation_clicked",
            "occurred_at": "2024-05-01T10:01:00Z",
            "user_id": "u1",
            "product_id": "p1",
            "properties": {"snapshot_id": "snap-new", "arm": "canary", "surface": "home", "rank": 1},
        },
        shop("a1", "add_to_cart", "2024-05-01T10:05:00Z", "u1", "P1"),
        shop("b1", "purchase", "2024-05-01T10:10:00Z", "u1", "P1", quantity=2, price=10.0),
        shown("x2", "2024-05-01T11:00:00Z", "u2", "control", ["P2", "P1"], surface="email"),
        shop("b2", "purchase", "2024-05-01T11:30:00Z", "u2", "P1", price=4.5),
        shown("x3", "2024-05-01T12:00:00Z", None, "control", ["P1"]),  # a guest
        shop("b3", "purchase", "2024-05-01T12:30:00Z", None, "P1", price=4.5),
        shop("b4", "purchase", "2024-05-01T12:30:00Z", "u3", "P1", price=4.5),  # never shown
        {**shown("x4", "2024-05-01T13:00:00Z", "u4", "treatment", ["P1"]), "event_id": "x4"},  # quarantined
    ],
    D2: [
        # 25 hours after x2 showed it: outside the 24 h window.
        shop("b5", "purchase", "2024-05-02T12:00:00Z", "u2", "P2", price=8.0),
        shown("x5", "2024-05-02T09:00:00Z", "u1", "canary", ["P3"]),
    ],
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    for day, rows in LOG.items():
        write_jsonl(home / "landing" / day.isoformat() / "tracker.jsonl", rows)
    return build_warehouse(home)


def rows(path, sql):
    with connect(path, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_bad_exposure_is_quarantined_not_modelled(warehouse):
    assert rows(warehouse, "select reason from quarantined_events") == [("invalid_value",)]
    assert rows(warehouse, "select event_id from fct_recommendation_exposures order by 1") == [
        ("x1",),
        ("x2",),
        ("x3",),
        ("x5",),
    ]


def test_exposures_and_clicks_carry_snapshot_arm_surface(warehouse):
    assert rows(
        warehouse,
        "select event_id, user_id, is_guest, snapshot_id, arm, surface, products_shown "
        "from fct_recommendation_exposures where event_id in ('x2', 'x3') order by 1",
    ) == [
        ("x2", "u2", False, "snap-old", "control", "email", 2),
        ("x3", None, True, "snap-old", "control", "home", 1),
    ]
    assert rows(warehouse, "select event_id, product_id, rank, arm from fct_recommendation_clicks") == [
        ("k1", "P1", 1, "canary")
    ]


def test_recommendation_events_stay_out_of_the_shop_marts(warehouse):
    types = rows(warehouse, "select distinct event_type from fct_events order by 1")
    assert types == [("add_to_cart",), ("purchase",)]


def test_last_touch_attribution_within_the_window(warehouse):
    assert rows(
        warehouse,
        "select event_id, response_type, exposure_event_id, arm, rank, revenue::double "
        "from fct_recommendation_attributions order by 1",
    ) == [
        ("a1", "add_to_cart", "x1", "canary", 1, None),
        ("b1", "purchase", "x1", "canary", 1, 20.0),
        ("b2", "purchase", "x2", "control", 2, 4.5),
    ]  # b3 (guest), b4 (never shown), b5 (25 h late) are not credited


def test_daily_arms_reconcile_with_the_fact_tables(warehouse):
    assert rows(
        warehouse,
        "select day::varchar, snapshot_id, arm, exposures, exposed_shoppers, clicks, "
        "attributed_add_to_carts, attributed_purchases, converted_shoppers, attributed_revenue::double "
        "from fct_recommendation_daily_arms order by all",
    ) == [
        ("2024-05-01", "snap-new", "canary", 1, 1, 1, 1, 1, 1, 20.0),
        ("2024-05-01", "snap-old", "control", 2, 1, 0, 0, 1, 1, 4.5),
        ("2024-05-02", "snap-new", "canary", 1, 1, 0, 0, 0, 0, 0.0),
    ]


def test_attribution_unit_test_passes(warehouse):
    tested = dbt(
        "test", "--select", "fct_recommendation_attributions,test_type:unit", home=warehouse.parent.parent
    )
    assert tested.returncode == 0, tested.stdout[-4000:]
    assert "PASS=1" in tested.stdout

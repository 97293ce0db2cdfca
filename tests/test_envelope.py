from datetime import date, datetime

import pytest

from warehouse.envelope import InvalidEvent, Window, validate_event

WINDOW = Window.for_landing_day(date(2024, 3, 10))


def event(**overrides):
    base = {
        "event_id": "e-1",
        "event_type": "purchase",
        "occurred_at": "2024-03-10T12:00:00+01:00",
        "user_id": "u-1",
        "session_id": "s-1",
        "product_id": "SKU-1",
        "quantity": 2,
        "price": 9.5,
        "currency": "eur",
        "properties": {"country": "FR"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def test_valid_event_is_normalised_to_utc_and_upper_case_currency():
    row = validate_event(event(), WINDOW)
    assert row["occurred_at"] == datetime(2024, 3, 10, 11, 0)
    assert row["currency"] == "EUR"
    assert row["quantity"] == 2 and row["price"] == 9.5
    assert row["properties"] == {"country": "FR"}


def test_guest_event_has_no_user_and_search_needs_no_product():
    row = validate_event(
        event(event_type="search", user_id=None, product_id=None, quantity=None, price=None, query="red mug"),
        WINDOW,
    )
    assert row["user_id"] is None and row["product_id"] is None and row["query"] == "red mug"


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"event_id": ...}, "missing_field"),
        ({"event_id": ""}, "missing_field"),
        ({"event_id": ["x"]}, "wrong_type"),
        ({"event_type": "like"}, "unknown_event_type"),
        ({"event_type": 3}, "wrong_type"),
        ({"occurred_at": "2024-03-10 12:00:00"}, "bad_timestamp"),  # no zone
        ({"occurred_at": "yesterday Z"}, "bad_timestamp"),
        ({"occurred_at": 1710000000}, "wrong_type"),
        ({"occurred_at": "1970-01-01T00:00:00Z"}, "timestamp_out_of_range"),
        ({"occurred_at": "2024-03-13T00:00:00Z"}, "timestamp_out_of_range"),  # future of the landing day
        ({"product_id": None}, "missing_field"),
        ({"quantity": -3}, "invalid_value"),
        ({"quantity": 1.5}, "wrong_type"),
        ({"quantity": "2"}, "wrong_type"),
        ({"price": -1}, "invalid_value"),
        ({"price": "cheap"}, "wrong_type"),
        ({"currency": "EURO"}, "invalid_value"),
        ({"properties": "x"}, "wrong_type"),
        ({"event_type": "search", "product_id": None, "query": None}, "missing_field"),
    ],
)
def test_each_kind_of_bad_event_gets_its_reason(overrides, reason):
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event(**overrides), WINDOW)
    assert raised.value.reason == reason


def test_non_object_is_rejected():
    with pytest.raises(InvalidEvent) as raised:
        validate_event([1, 2], WINDOW)
    assert raised.value.reason == "not_an_object"


def test_late_event_from_days_before_the_landing_day_is_accepted():
    row = validate_event(event(occurred_at="2024-03-01T08:00:00Z"), WINDOW)
    assert row["occurred_at"] == datetime(2024, 3, 1, 8, 0)

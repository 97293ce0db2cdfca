from datetime import date, datetime
from decimal import Decimal

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


@pytest.mark.parametrize(
    "occurred_at",
    ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59.999999-23:59"],
)
def test_a_timestamp_that_leaves_pythons_range_in_utc_is_out_of_range(occurred_at):
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event(occurred_at=occurred_at), WINDOW)
    assert raised.value.reason == "timestamp_out_of_range"


@pytest.mark.parametrize(
    "field, value",
    [
        ("user_id", "u\x001"),  # NUL
        ("user_id", "u\x1f1"),  # other C0 control
        ("session_id", "s\x7f1"),  # DEL
        ("user_id", "u\u00851"),  # C1 control (NEL)
        ("product_id", "SKU\u200b-1"),  # zero-width space
        ("product_id", "SKU\u200d-1"),  # zero-width joiner
        ("product_id", "SKU\ufeff-1"),  # byte-order mark inside
        ("product_id", "SKU\u00ad-1"),  # soft hyphen
        ("product_id", "SKU\u202e-1"),  # right-to-left override
        ("product_id", "SKU\u2028-1"),  # line separator
        ("product_id", "SKU\u00a0-1"),  # no-break space inside
        ("product_id", "SKU\ufe0f-1"),  # variation selector
        ("product_id", "SKU\u3164-1"),  # Hangul filler: a letter that draws nothing
        ("event_id", "e\ue000"),  # private use
        ("event_id", "e\tx"),  # tab inside
        ("user_id", "u" * 129),  # too long
    ],
)
def test_identifiers_with_control_or_invisible_characters_are_refused(field, value):
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event(**{field: value}), WINDOW)
    assert raised.value.reason == "invalid_identifier"
    assert field in raised.value.detail


@pytest.mark.parametrize("value", ["SKU 10442", "Küche-É", "商品-1", "🎁-gift", "u" * 128, " padded\t"])
def test_printable_identifiers_are_accepted_trimmed(value):
    assert validate_event(event(product_id=value), WINDOW)["product_id"] == value.strip()


@pytest.mark.parametrize(
    "properties",
    [
        {"country": {"x": 1}},
        {"country": ["FR"]},
        {"country": True},
        {"title": 3.5},
        {"category": {"path": "Home"}},
        {"merchandise": "false"},
        {"merchandise": 0},
    ],
)
def test_properties_that_shopguide_reads_are_typed_like_top_level_fields(properties):
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event(properties=properties), WINDOW)
    assert raised.value.reason == "wrong_type"
    assert f"properties.{next(iter(properties))}" in raised.value.detail


def test_typed_properties_accept_their_types_and_null_and_other_keys_stay_free():
    properties = {"country": "FR", "title": None, "merchandise": False, "free": {"any": [1, "x", None]}}
    assert validate_event(event(properties=properties), WINDOW)["properties"] == properties
    assert validate_event(event(properties={"country": 826}), WINDOW)["properties"] == {"country": 826}


@pytest.mark.parametrize(
    "value",
    [b"\xff", Decimal("1.5"), datetime(2024, 1, 1), date(2024, 1, 1), {"deep": [b"x"]}, 2**64, float("nan")],
    ids=["bytes", "decimal", "datetime", "date", "nested-bytes", "int-beyond-64-bit", "nan"],
)
def test_properties_hold_json_values_only(value):
    # Parquet rows reach validation as Python values: a binary or decimal column inside the
    # properties struct must be refused here, not crash the warehouse write.
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event(properties={"free": value}), WINDOW)
    assert raised.value.reason == "wrong_type"
    assert "properties.free" in raised.value.detail

"""The event envelope: what a landing line must look like to enter the event log.

`validate_event` turns one decoded line into a clean row or raises `InvalidEvent`
with a machine-readable reason. The reasons are a closed set (`QUARANTINE_REASONS`)
so that quarantine counts can be grouped and alerted on. docs/events.md is the
human-readable version of this module; keep them in step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

# The shop's own events. Appended to, never reordered: the synthetic producer indexes them.
SHOP_EVENT_TYPES = (
    "view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "return",
    "search",
    "product_upserted",
    "product_delisted",
)
# What the storefront showed from a published snapshot and what was clicked: the exposure log
# an online experiment (a canary) is read from (docs/experiments.md).
RECOMMENDATION_EVENT_TYPES = ("recommendation_shown", "recommendation_clicked")
EVENT_TYPES = SHOP_EVENT_TYPES + RECOMMENDATION_EVENT_TYPES
CATALOG_EVENT_TYPES = ("product_upserted", "product_delisted")
# Events that are about one product and need its id.
PRODUCT_EVENT_TYPES = (
    "view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "return",
    "product_upserted",
    "product_delisted",
    "recommendation_clicked",  # the product clicked
)
# Events that move units and need a positive quantity.
QUANTITY_EVENT_TYPES = ("add_to_cart", "remove_from_cart", "purchase", "return")

MAX_LINE_BYTES = 64 * 1024
MAX_ID_CHARS = 128
# Older than the web shop era, or later than the landing day allows: a clock or parsing bug.
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)

QUARANTINE_REASONS = (
    "not_utf8",
    "oversized",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_event_type",
    "bad_timestamp",
    "timestamp_out_of_range",
    "invalid_value",
    "invalid_identifier",
    "unreadable_file",
)


IDENTIFIER_FIELDS = ("event_id", "user_id", "session_id", "product_id")
# An accepted event's fields, in the order the warehouse stores them (properties last: it is
# stored as JSON text, the rest as they are).
EVENT_FIELDS = (
    "event_id",
    "event_type",
    "occurred_at",
    "user_id",
    "session_id",
    "product_id",
    "quantity",
    "price",
    "currency",
    "query",
    "properties",
)
# Characters that draw nothing but are neither control nor format characters (which
# str.isprintable already refuses): the rest of Unicode's Default_Ignorable_Code_Point set,
# i.e. the combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian free
# variation selectors and the variation selectors.
_INVISIBLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)
# The properties keys the dbt models read (docs/events.md, "Property keys that shopguide
# reads") and the JSON types they must have; other keys are free-form.
# An integer passes for a string, read as its decimal text, as for top-level string fields;
# types are compared exactly, so a boolean is no integer here.
_STRING = ("string", (str, int))
TYPED_PROPERTIES = {
    "title": _STRING,
    "description": _STRING,
    "category": _STRING,
    "brand": _STRING,
    "country": _STRING,
    "merchandise": ("boolean", (bool,)),
}
_PLAIN_JSON = (str, bool, type(None))
# The properties of the two recommendation types, checked on those types only: other types'
# producers may already use keys such as `rank` freely, and must not start failing.
ARMS = ("control", "canary")
SURFACES = ("home", "product_page", "search", "email")
# A storefront shows a handful of products; a list this long is a producer bug (and would
# make one exposure line alone approach the line size limit).
MAX_SHOWN_PRODUCTS = 200
# orjson, which writes properties to the warehouse, holds integers in this range only.
_JSON_INT_RANGE = (-(2**63), 2**64 - 1)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# RFC 3339 demands a zone: Z or +hh:mm. A bare local time is ambiguous and is refused.
_HAS_ZONE = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")


class InvalidEvent(ValueError):
    """A line that cannot enter the event log; `reason` is one of QUARANTINE_REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in QUARANTINE_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Window:
    """Which occurred_at values are plausible for a landing day."""

    earliest: datetime
    latest: datetime

    @classmethod
    def for_landing_day(cls, day: date) -> Window:
        end_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        return cls(EARLIEST_OCCURRED_AT, end_of_day + MAX_CLOCK_SKEW)


def _optional_str(record: dict, field: str, *, required: bool = False) -> str | None:
    value = record.get(field)
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"{field} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent("wrong_type", f"{field} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        if required:
            raise InvalidEvent("missing_field", f"{field} is empty")
        return None
    if field in IDENTIFIER_FIELDS:
        _check_identifier(field, text)
    elif len(text) > MAX_ID_CHARS and field != "query":
        raise InvalidEvent("invalid_value", f"{field} longer than {MAX_ID_CHARS} characters")
    return text


def _check_identifier(field: str, text: str) -> None:
    """The identifier rule (docs/events.md): ids are joined, grouped and published, so two
    ids that look the same must be the same string, and none may break a terminal or a CSV."""
    if len(text) > MAX_ID_CHARS:
        raise InvalidEvent("invalid_identifier", f"{field} longer than {MAX_ID_CHARS} characters")
    if text.isascii() and text.isprintable():  # the usual id, decided in two C calls
        return
    # isprintable refuses control (NUL, tab, DEL, C1), format (zero-width, bidi, soft hyphen,
    # BOM), separator (no-break space, line separator), private-use and unassigned characters;
    # the ordinary space is allowed.
    invisible = None if text.isprintable() else next(c for c in text if not c.isprintable())
    if invisible is None:
        match = _INVISIBLE.search(text)
        invisible = match.group() if match else None
    if invisible is not None:
        raise InvalidEvent(
            "invalid_identifier",
            f"{field} holds U+{ord(invisible):04X}, a control or invisible character",
        )


def parse_timestamp(value: Any, window: Window) -> datetime:
    """RFC 3339 with a zone → naive UTC datetime (the warehouse stores UTC)."""
    if value is None:
        raise InvalidEvent("missing_field", "occurred_at is required")
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"occurred_at must be a string, got {type(value).__name__}")
    text = value.strip()
    if not _HAS_ZONE.search(text):
        raise InvalidEvent("bad_timestamp", f"occurred_at {text!r} has no time zone")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidEvent("bad_timestamp", f"occurred_at {text!r} is not RFC 3339") from None
    if parsed.tzinfo is None:  # pragma: no cover - guarded by _HAS_ZONE
        raise InvalidEvent("bad_timestamp", f"occurred_at {text!r} has no time zone")
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        # 9999-12-31 with a negative offset, or 0001-01-01 with a positive one, has no UTC
        # datetime; either is far outside any landing day's window anyway.
        parsed = None
    if parsed is None or not window.earliest <= parsed <= window.latest:
        raise InvalidEvent(
            "timestamp_out_of_range",
            f"occurred_at {text} outside {window.earliest:%Y-%m-%d}..{window.latest:%Y-%m-%d %H:%M}Z",
        )
    return parsed.replace(tzinfo=None)


def _quantity(record: dict, event_type: str) -> int | None:
    value = record.get("quantity")
    if value is None:
        if event_type in QUANTITY_EVENT_TYPES:
            raise InvalidEvent("missing_field", f"quantity is required for {event_type}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent("wrong_type", f"quantity must be an integer, got {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidEvent("wrong_type", f"quantity must be an integer, got {value}")
        value = int(value)
    if event_type in QUANTITY_EVENT_TYPES and value <= 0:
        raise InvalidEvent("invalid_value", f"quantity must be positive for {event_type}, got {value}")
    if abs(value) > 1_000_000:
        raise InvalidEvent("invalid_value", f"quantity {value} is implausible")
    return value


def _price(record: dict) -> float | None:
    value = record.get("price")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent("wrong_type", f"price must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InvalidEvent("invalid_value", f"price must be a finite number >= 0, got {value}")
    if value > 1_000_000:
        raise InvalidEvent("invalid_value", f"price {value} is implausible")
    return value


def validate_event(record: Any, window: Window) -> dict:
    """Check one decoded landing record against the envelope; return the row to store."""
    if not isinstance(record, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    event_id = _optional_str(record, "event_id", required=True)
    raw_type = record.get("event_type")
    if raw_type is None:
        raise InvalidEvent("missing_field", "event_type is required")
    if not isinstance(raw_type, str):
        raise InvalidEvent("wrong_type", "event_type must be a string")
    event_type = raw_type.strip().lower()
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(
            "unknown_event_type", f"event_type {raw_type!r} is not one of {', '.join(EVENT_TYPES)}"
        )
    occurred_at = parse_timestamp(record.get("occurred_at"), window)
    product_id = _optional_str(record, "product_id", required=event_type in PRODUCT_EVENT_TYPES)
    query = _optional_str(record, "query", required=event_type == "search")
    currency = _optional_str(record, "currency")
    if currency is not None:
        currency = currency.upper()
        if not _CURRENCY.match(currency):
            raise InvalidEvent("invalid_value", f"currency {currency!r} is not an ISO 4217 code")
    properties = record.get("properties")
    if properties is not None:
        _check_properties(properties)
    if event_type in RECOMMENDATION_EVENT_TYPES:
        _check_recommendation_properties(properties, event_type)
    return {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "user_id": _optional_str(record, "user_id"),
        "session_id": _optional_str(record, "session_id"),
        "product_id": product_id,
        "quantity": _quantity(record, event_type),
        "price": _price(record),
        "currency": currency,
        "query": query,
        "properties": properties,
    }


def _check_properties(properties: Any) -> None:
    """An object of JSON values, whose keys that dbt reads have their documented type.

    A Parquet row's struct can hold binary, decimal or date values, which have no JSON form
    (the warehouse stores properties as JSON): they are refused here, not at the write."""
    if not isinstance(properties, dict):
        raise InvalidEvent("wrong_type", "properties must be an object")
    for key, value in properties.items():
        typed = TYPED_PROPERTIES.get(key)
        if typed is not None and value is not None and type(value) not in typed[1]:
            raise InvalidEvent(
                "wrong_type", f"properties.{key} must be a {typed[0]}, got {type(value).__name__}"
            )
        if type(value) not in _PLAIN_JSON:  # strings and flags, the usual values, need no walk
            bad = next(_json_leaves(value, f"properties.{key}"), None)
            if bad is not None:
                path, leaf = bad
                raise InvalidEvent(
                    "wrong_type", f"{path} is {type(leaf).__name__} {leaf!r:.60}: not a JSON value"
                )


def _property_identifier(properties: dict, key: str, event_type: str) -> str:
    value = properties.get(key)
    if value is None:
        raise InvalidEvent("missing_field", f"properties.{key} is required for {event_type}")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent("wrong_type", f"properties.{key} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InvalidEvent("missing_field", f"properties.{key} is empty")
    _check_identifier(f"properties.{key}", text)
    return text


def _property_choice(properties: dict, key: str, choices: tuple[str, ...], event_type: str) -> None:
    value = properties.get(key)
    if value is None:
        raise InvalidEvent("missing_field", f"properties.{key} is required for {event_type}")
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"properties.{key} must be a string, got {type(value).__name__}")
    if value not in choices:  # exact: the readout groups by these strings
        raise InvalidEvent(
            "invalid_value", f"properties.{key} {value!r:.40} is not one of {', '.join(choices)}"
        )


def _check_recommendation_properties(properties: Any, event_type: str) -> None:
    """recommendation_shown / recommendation_clicked (docs/events.md): which snapshot, arm and
    surface, and the products shown in rank order or the rank clicked. Stored as sent; these
    checks only make sure the dbt models can read every accepted line."""
    if properties is None:
        raise InvalidEvent("missing_field", f"properties is required for {event_type}")
    _property_identifier(properties, "snapshot_id", event_type)
    _property_choice(properties, "arm", ARMS, event_type)
    _property_choice(properties, "surface", SURFACES, event_type)
    if event_type == "recommendation_shown":
        products = properties.get("products")
        if products is None:
            raise InvalidEvent("missing_field", f"properties.products is required for {event_type}")
        if not isinstance(products, (list, tuple)):
            raise InvalidEvent(
                "wrong_type", f"properties.products must be a list, got {type(products).__name__}"
            )
        if not products:
            raise InvalidEvent("invalid_value", "properties.products is empty: nothing was shown")
        if len(products) > MAX_SHOWN_PRODUCTS:
            raise InvalidEvent(
                "invalid_value",
                f"properties.products holds {len(products)} ids, more than {MAX_SHOWN_PRODUCTS}",
            )
        seen = set()
        for position, product in enumerate(products):
            if isinstance(product, bool) or not isinstance(product, (str, int)):
                raise InvalidEvent(
                    "wrong_type",
                    f"properties.products[{position}] must be a string, got {type(product).__name__}",
                )
            text = str(product).strip()
            if not text:
                raise InvalidEvent("invalid_value", f"properties.products[{position}] is empty")
            _check_identifier(f"properties.products[{position}]", text)
            # Staging upper-cases product ids: two spellings of one product would be one product
            # at two ranks, and attribution could not say which rank sold it.
            if text.upper() in seen:
                raise InvalidEvent("invalid_value", f"properties.products repeats {text!r:.40}")
            seen.add(text.upper())
    else:
        rank = properties.get("rank")
        if rank is None:
            raise InvalidEvent("missing_field", f"properties.rank is required for {event_type}")
        if type(rank) is not int:
            raise InvalidEvent("wrong_type", f"properties.rank must be an integer, got {type(rank).__name__}")
        if not 1 <= rank <= MAX_SHOWN_PRODUCTS:
            raise InvalidEvent(
                "invalid_value", f"properties.rank must be from 1 to {MAX_SHOWN_PRODUCTS}, got {rank}"
            )


def _json_leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every value under `value` that is not JSON, with its path. Iterative: a producer's
    nesting depth must not reach Python's recursion limit."""
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    yield f"{path} key {key!r}", key
                stack.append((f"{path}.{key}", item))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif value is None or isinstance(value, (str, bool)):
            continue
        elif isinstance(value, int):
            if not _JSON_INT_RANGE[0] <= value <= _JSON_INT_RANGE[1]:
                yield path, value
        elif isinstance(value, float):
            if not math.isfinite(value):  # NaN and infinity have no JSON form
                yield path, value
        else:
            yield path, value

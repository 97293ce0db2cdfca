"""The event envelope: what a landing line must look like to enter the event log.

`validate_event` turns one decoded line into a clean row or raises `InvalidEvent`
with a machine-readable reason. The reasons are a closed set (`QUARANTINE_REASONS`)
so that quarantine counts can be grouped and alerted on. docs/events.md is the
human-readable version of this module; keep them in step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

EVENT_TYPES = (
    "view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "return",
    "search",
    "product_upserted",
    "product_delisted",
)
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
    "unreadable_file",
)


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
    if len(text) > MAX_ID_CHARS and field != "query":
        raise InvalidEvent("invalid_value", f"{field} longer than {MAX_ID_CHARS} characters")
    return text


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
    parsed = parsed.astimezone(UTC)
    if not window.earliest <= parsed <= window.latest:
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
    if properties is not None and not isinstance(properties, dict):
        raise InvalidEvent("wrong_type", "properties must be an object")
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

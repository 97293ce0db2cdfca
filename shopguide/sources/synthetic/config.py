"""What to generate and what was written, plus the codes and clock every part shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from core.errors import BadInput
from warehouse.envelope import EVENT_TYPES

FILE_STEM = "synthetic"
FORMATS = ("jsonl", "parquet")

# Type codes index warehouse.envelope.EVENT_TYPES (view, add_to_cart, ..., product_delisted).
VIEW, ADD, REMOVE, PURCHASE, RETURN, SEARCH, UPSERT, DELIST = range(8)
assert EVENT_TYPES[SEARCH] == "search" and EVENT_TYPES[DELIST] == "product_delisted"

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. `events` counts valid, distinct events (catalog + behaviour)."""

    events: int = 100_000
    seed: int = 42
    start_date: date = date(2024, 1, 1)
    days: int = 30
    products: int | None = None  # default: clamp(events // 200, 200, 50_000)
    users: int | None = None  # default: clamp(events // 50, 100, 1_000_000)
    late_share: float = 0.02
    duplicate_share: float = 0.005
    malformed_share: float = 0.001
    guest_share: float = 0.15

    def __post_init__(self):
        if self.events < 1:
            raise BadInput("events must be >= 1")
        if self.days < 1:
            raise BadInput("days must be >= 1")
        if self.products is not None and self.products < 1:
            raise BadInput("products must be >= 1")
        if self.users is not None and self.users < 1:
            raise BadInput("users must be >= 1")
        for name in ("late_share", "duplicate_share", "malformed_share", "guest_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInput(f"{name} must be in [0, 1], got {value}")

    @property
    def product_count(self) -> int:
        return self.products if self.products is not None else clamp(self.events // 200, 200, 50_000)

    @property
    def user_count(self) -> int:
        return self.users if self.users is not None else clamp(self.events // 50, 100, 1_000_000)


@dataclass
class SyntheticSummary:
    """What `generate` wrote. `days` counts landing-day folders (late lines can add some)."""

    files: list[Path] = field(default_factory=list)
    events: int = 0  # valid, distinct events
    duplicates: int = 0  # extra copies of valid events
    malformed: int = 0  # deliberately invalid extra lines (JSON Lines only)
    late: int = 0  # distinct events landing 1-3 days after they occurred
    days: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def lines_written(self) -> int:
        return self.events + self.duplicates + self.malformed


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))

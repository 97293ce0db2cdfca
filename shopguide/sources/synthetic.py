"""Producer: a deterministic synthetic shop event stream, written as landing files.

Why it exists: the real data (Online Retail) has purchases and returns only, one
country mostly, and a fixed size. Scale tests need 1e3..1e7 events on demand, and the
recommenders and text embeddings need the event types the real data lacks (views,
carts, searches, an evolving catalog) with enough structure to learn from.

What it simulates, per day of `[start_date, start_date + days)`:
- an event-sourced catalog: every initial product is `product_upserted` on the first
  day between 00:00 and 01:00; new products appear later (01:00-02:00), some change
  price or title (a new upsert, 02:00-03:00) and some are `product_delisted`
  (03:00-04:00). The catalog is only touched before 05:00, while sessions run between
  05:00 and midnight, so the price a session sees is the price of its day and no
  product is viewed before its upsert or after its delisting;
- users with a home country and Dirichlet affinities over top categories; guests
  (no user_id) browse by overall category popularity;
- sessions as funnels: optional searches (query text from the category vocabulary,
  product_id null), views (Zipf popularity within the focus leaf/top category), some
  add_to_cart, fewer remove_from_cart, purchases of the carted items at the day's
  price if the session converts; returns by the same user 2-14 days later.

Landing quirks the ingester has to cope with: late events (land 1-3 days after they
occurred), duplicates (same event_id, byte-identical payload, same or a later landing
day) and, in JSON Lines only, malformed extra lines of five kinds.

Determinism: every random draw comes from `numpy.random.default_rng` streams derived
from the seed, in a fixed order; nothing depends on the wall clock, set order or
`hash()`. Same config → byte-identical files. Memory is bounded by one day of events
plus the few late/duplicate lines waiting for a later landing day.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson

from core.errors import BadInput
from shopguide.sources.synthetic_vocabulary import (
    BENEFITS,
    BRANDS,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    DELIST_REASONS,
    DEVICE_WEIGHTS,
    DEVICES,
    LEAVES,
    PALETTE,
    RETURN_REASONS,
    TOP_WEIGHTS,
    TOPS,
    _Leaf,
)
from warehouse.envelope import EVENT_TYPES
from warehouse.landing import day_folder, write_jsonl

FILE_STEM = "synthetic"
FORMATS = ("jsonl", "parquet")
CURRENCY = "EUR"

# Type codes index warehouse.envelope.EVENT_TYPES (view, add_to_cart, ..., product_delisted).
VIEW, ADD, REMOVE, PURCHASE, RETURN, SEARCH, UPSERT, DELIST = range(8)
assert EVENT_TYPES[SEARCH] == "search" and EVENT_TYPES[DELIST] == "product_delisted"

HOUR = 3600
DAY = 24 * HOUR
# Catalog operations happen in fixed early-morning slots; sessions never start before
# SESSION_OPEN and always end before midnight (see _session_times).
INITIAL_UPSERT_SLOT = (0, HOUR)
NEW_PRODUCT_SLOT = (HOUR, 2 * HOUR)
UPDATE_SLOT = (2 * HOUR, 3 * HOUR)
DELIST_SLOT = (3 * HOUR, 4 * HOUR)
SESSION_OPEN = 5 * HOUR
RETURN_SLOT = (8 * HOUR, 22 * HOUR)

# Behaviour knobs: a session averages ~5.6 events; ~13% of views are carted, ~5.5% bought.
NEW_PRODUCT_SHARE = 0.12  # of the catalog appears after day one
UPDATE_SHARE = 0.10  # of products get one later upsert (price, sometimes title)
TITLE_CHANGE_SHARE = 0.25  # of those updates also rename the product
DELIST_SHARE = 0.04
MAX_VIEWS = 30
VIEW_STOP_P = 0.24  # geometric stop probability for views per session
SEARCHES_P = (0.55, 0.33, 0.12)  # P(0, 1, 2 searches in a session)
CART_P = 0.13
REMOVE_P = 0.22
CONVERT_P = 0.55
RETURN_P = 0.07
QUANTITY_P = (0.76, 0.17, 0.07)  # P(1, 2, 3 units)
FOCUS_LEAF_P = 0.60  # a view is in the session's focus leaf category ...
FOCUS_TOP_P = 0.85  # ... else (up to this) its focus top category, else anything the user likes
MAX_GAP_S = 300
# Sessions start by this hourly profile between 06:00 and 21:00 (evening peak).
SESSION_HOURS = np.arange(6, 21)
SESSION_HOUR_WEIGHTS = np.array([1, 2, 3, 4, 4, 5, 5, 4, 4, 5, 6, 7, 8, 8, 7], dtype=float)


# ----------------------------------------------------------------------------- public API


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
        return self.products if self.products is not None else _clamp(self.events // 200, 200, 50_000)

    @property
    def user_count(self) -> int:
        return self.users if self.users is not None else _clamp(self.events // 50, 100, 1_000_000)


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


def generate(landing_root: Path, config: SyntheticConfig, fmt: str = "jsonl") -> SyntheticSummary:
    """Write `landing_root/<day>/synthetic.<fmt>` for every landing day; see the module doc.

    Files are replaced atomically; files an earlier run wrote for other days are left alone,
    so use a fresh landing root when changing `days` or `start_date`.
    """
    if fmt not in FORMATS:
        raise BadInput(f"fmt must be one of {FORMATS}, got {fmt!r}")
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    catalog = _build_catalog(np.random.default_rng(seeds[0]), config)
    budget = config.events - catalog.event_count
    if budget < 0:
        raise BadInput(
            f"{config.events} events cannot hold the catalog's {catalog.event_count} "
            "product events; raise events or lower products"
        )
    users = _build_users(np.random.default_rng(seeds[1]), config.user_count)
    day_budgets = _day_budgets(np.random.default_rng(seeds[2]), config, budget)
    writer = _LandingWriter(landing_root, config, fmt, np.random.default_rng(seeds[3]))
    simulation = _Simulation(config, catalog, users)
    day_seeds = np.random.SeedSequence([config.seed, 1]).spawn(config.days)
    for day in range(config.days):
        rng = np.random.default_rng(day_seeds[day])
        columns = simulation.run_day(rng, day, int(day_budgets[day]))
        writer.add_day(rng, day, columns, simulation.payloads(day, columns, fmt))
    return writer.finish()


# ----------------------------------------------------------------------------- helpers


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _round_price(raw: np.ndarray) -> np.ndarray:
    """Shop prices end in .99 (or .49 under 5 EUR), never below 0.49."""
    raw = np.asarray(raw, dtype=float)
    whole = np.where(raw < 5, np.round(raw * 2) / 2, np.round(raw))
    return np.round(np.maximum(whole - 0.01, 0.49), 2)


def _cumulative_sampler(weights: np.ndarray) -> np.ndarray:
    """Integer cumulative weights: exact searchsorted sampling, no float edge cases."""
    return np.cumsum(np.asarray(weights, dtype=np.int64))


def _draw(rng: np.random.Generator, cum: np.ndarray, base: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """For each row draw a position whose weight interval lies in [base, base + mass)."""
    offset = np.minimum((rng.random(len(base)) * mass).astype(np.int64), mass - 1)
    return np.searchsorted(cum, base + offset, side="right")


def _categorical(rng: np.random.Generator, probabilities: Sequence[float], size: int) -> np.ndarray:
    cdf = np.cumsum(np.asarray(probabilities, dtype=float))
    return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), len(cdf) - 1)


def _within_offsets(lengths: np.ndarray) -> np.ndarray:
    """0..n-1 inside each run of a flat array laid out by `lengths`."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts


# ----------------------------------------------------------------------------- catalog


@dataclass
class _Catalog:
    """The product master data and the schedule of catalog events (arrays by product)."""

    leaf: np.ndarray
    brand: list[str]
    tone: np.ndarray
    material: np.ndarray
    noun: np.ndarray
    spec: np.ndarray
    base_price: np.ndarray
    popularity: np.ndarray  # int64 Zipf weight within the leaf
    upsert_day: np.ndarray
    delist_day: np.ndarray  # days (i.e. never) when not delisted
    # Catalog operations, one row each, sorted by (day, time).
    op_day: np.ndarray
    op_time: np.ndarray
    op_kind: np.ndarray  # UPSERT or DELIST (updates are upserts)
    op_product: np.ndarray
    op_price: np.ndarray  # the price set by an upsert (nan for delists)
    op_tone: np.ndarray  # the title tone set by an upsert (-1 for delists)

    @property
    def size(self) -> int:
        return len(self.leaf)

    @property
    def event_count(self) -> int:
        return len(self.op_day)

    def title(self, product: int, tone: int) -> str:
        leaf = LEAVES[self.leaf[product]]
        return (
            f"{leaf.tones[tone]} {leaf.materials[self.material[product]]} "
            f"{leaf.nouns[self.noun[product]]} {leaf.specs[self.spec[product]]}"
        )

    def description(self, product: int, tone: int) -> str:
        leaf = LEAVES[self.leaf[product]]
        thing = f"{leaf.materials[self.material[product]]} {leaf.nouns[self.noun[product]]}".lower()
        article = "An" if thing[0] in "aeiou" else "A"
        benefits = BENEFITS[leaf.top]
        benefit = benefits[(product + tone) % len(benefits)]
        colour = f" in {leaf.tones[tone].lower()}" if leaf.tones is PALETTE else ""
        return f"{article} {thing} from {self.brand[product]}{colour}, {benefit}."


def _build_catalog(rng: np.random.Generator, config: SyntheticConfig) -> _Catalog:
    """Products, their popularity and the upsert/update/delist schedule."""
    count, days = config.product_count, config.days
    leaf = _assign_leaves(rng, count)
    tone = _pick_word(rng, leaf, [len(lf.tones) for lf in LEAVES])
    material = _pick_word(rng, leaf, [len(lf.materials) for lf in LEAVES])
    noun = _pick_word(rng, leaf, [len(lf.nouns) for lf in LEAVES])
    spec = _pick_word(rng, leaf, [len(lf.specs) for lf in LEAVES])
    brand_index = _pick_word(rng, leaf, [len(BRANDS[lf.top]) for lf in LEAVES])
    brand = [BRANDS[LEAVES[lf].top][b] for lf, b in zip(leaf.tolist(), brand_index.tolist(), strict=True)]
    medians = np.array([lf.median_price for lf in LEAVES])[leaf]
    base_price = _round_price(medians * rng.lognormal(0.0, 0.45, count))
    popularity = _zipf_popularity(rng, leaf)

    upsert_day = np.zeros(count, dtype=np.int64)
    if days > 1:
        new = rng.random(count) < NEW_PRODUCT_SHARE
        new[: len(LEAVES)] = False  # every leaf starts with at least one product
        upsert_day[new] = rng.integers(1, days, int(new.sum()))
    delist_day = np.full(count, days, dtype=np.int64)
    # The leaf-covering products stay on sale, so every category always has something to show.
    can_delist = np.flatnonzero((upsert_day + 2 < days) & (np.arange(count) >= len(LEAVES)))
    delisted = can_delist[rng.random(len(can_delist)) < DELIST_SHARE]
    delist_day[delisted] = rng.integers(upsert_day[delisted] + 2, days)

    ops = [_initial_ops(rng, upsert_day, base_price, tone)]
    ops.append(_update_ops(rng, upsert_day, delist_day, base_price, tone, leaf))
    ops.append(_delist_ops(rng, delisted, delist_day))
    op_day, op_time, op_kind, op_product, op_price, op_tone = (
        np.concatenate(parts) for parts in zip(*ops, strict=True)
    )
    order = np.lexsort((op_product, op_time, op_day))
    return _Catalog(
        leaf,
        brand,
        tone,
        material,
        noun,
        spec,
        base_price,
        popularity,
        upsert_day,
        delist_day,
        op_day[order],
        op_time[order],
        op_kind[order],
        op_product[order],
        op_price[order],
        op_tone[order],
    )


def _pick_word(rng: np.random.Generator, leaf: np.ndarray, sizes: list[int]) -> np.ndarray:
    """A uniform index into each product's leaf word list (vectorised over products)."""
    size = np.asarray(sizes, dtype=np.int64)[leaf]
    return np.minimum((rng.random(len(leaf)) * size).astype(np.int64), size - 1)


def _assign_leaves(rng: np.random.Generator, count: int) -> np.ndarray:
    """Leaves by demand, but the first products cover every leaf once."""
    weights = rng.lognormal(0.0, 0.5, len(LEAVES))
    leaf = _categorical(rng, weights, count)
    cover = min(count, len(LEAVES))
    leaf[:cover] = rng.permutation(len(LEAVES))[:cover]
    return leaf.astype(np.int64)


def _zipf_popularity(rng: np.random.Generator, leaf: np.ndarray) -> np.ndarray:
    """Weight 1/rank^1.1 within the leaf (ranks in random order) times a log-normal
    "bestseller" factor, so even small catalogs (few products per leaf) have hits."""
    order = np.lexsort((rng.random(len(leaf)), leaf))
    sorted_leaf = leaf[order]
    starts = np.searchsorted(sorted_leaf, sorted_leaf, side="left")
    rank = np.empty(len(leaf), dtype=np.int64)
    rank[order] = np.arange(len(leaf)) - starts
    appeal = rng.lognormal(0.0, 0.8, len(leaf))
    return (1_000_000 * appeal / (rank + 1.0) ** 1.1).astype(np.int64) + 1


def _initial_ops(rng, upsert_day, base_price, tone):
    count = len(upsert_day)
    first = upsert_day == 0
    time = np.where(
        first,
        rng.integers(*INITIAL_UPSERT_SLOT, count),
        rng.integers(*NEW_PRODUCT_SLOT, count),
    )
    return (upsert_day, time, np.full(count, UPSERT), np.arange(count), base_price, tone)


def _update_ops(rng, upsert_day, delist_day, base_price, tone, leaf):
    """One later upsert for some products: a price change, sometimes a new title."""
    # Strictly between the product's upsert day and its delist day (days when never delisted).
    eligible = np.flatnonzero(upsert_day + 1 < delist_day)
    chosen = eligible[rng.random(len(eligible)) < UPDATE_SHARE]
    day = rng.integers(upsert_day[chosen] + 1, delist_day[chosen]) if len(chosen) else chosen
    factor = np.clip(rng.lognormal(0.0, 0.12, len(chosen)), 0.7, 1.3)
    price = _round_price(base_price[chosen] * factor)
    # A rename picks another tone of the same leaf ("Sage ..." becomes "Navy ...").
    choices = np.array([len(lf.tones) for lf in LEAVES], dtype=np.int64)[leaf[chosen]]
    step = 1 + np.minimum((rng.random(len(chosen)) * (choices - 1)).astype(np.int64), choices - 2)
    renamed = rng.random(len(chosen)) < TITLE_CHANGE_SHARE
    new_tone = np.where(renamed, (tone[chosen] + step) % choices, tone[chosen])
    time = rng.integers(*UPDATE_SLOT, len(chosen))
    return (day.astype(np.int64), time, np.full(len(chosen), UPSERT), chosen, price, new_tone)


def _delist_ops(rng, delisted, delist_day):
    n = len(delisted)
    return (
        delist_day[delisted],
        rng.integers(*DELIST_SLOT, n),
        np.full(n, DELIST),
        delisted,
        np.full(n, np.nan),
        np.full(n, -1),
    )


# ----------------------------------------------------------------------------- users


@dataclass
class _Users:
    activity_cum: np.ndarray  # float cumulative activity: heavy users have many sessions
    affinity_cum: np.ndarray  # float32 [users, tops] cumulative category preferences
    country: np.ndarray

    @property
    def size(self) -> int:
        return len(self.country)


def _build_users(rng: np.random.Generator, count: int) -> _Users:
    """Users with a home country, Dirichlet top-category tastes and skewed activity."""
    alpha = 0.35 * len(TOPS) * TOP_WEIGHTS / TOP_WEIGHTS.sum()
    affinity = rng.dirichlet(alpha, count).astype(np.float32)
    country = _categorical(rng, COUNTRY_WEIGHTS, count).astype(np.int8)
    activity = rng.lognormal(0.0, 1.1, count)
    return _Users(np.cumsum(activity), np.cumsum(affinity, axis=1), country)


def _day_budgets(rng: np.random.Generator, config: SyntheticConfig, budget: int) -> np.ndarray:
    """Behavioural events per day: weekends busier, mild growth, exact total."""
    weekday = np.array([(config.start_date + timedelta(days=d)).weekday() for d in range(config.days)])
    weights = np.where(weekday >= 5, 1.25, 1.0) * (1.0 + 0.25 * np.arange(config.days) / config.days)
    return rng.multinomial(budget, weights / weights.sum())


# ----------------------------------------------------------------------------- queries


def _leaf_queries(leaf: _Leaf) -> list[str]:
    """Search phrases for a leaf, most common first (what shoppers type, lower case)."""
    nouns = [n.lower() for n in leaf.nouns]
    phrases = [nouns[0], leaf.name.lower(), *nouns[1:]]
    phrases += [f"{m.lower()} {n}" for m in leaf.materials[:3] for n in nouns[:2]]
    phrases += [f"{t.lower()} {nouns[0]}" for t in leaf.tones[:3]]
    phrases += [f"{nouns[0]} {s.lower()}" for s in leaf.specs[:2]]
    phrases += [f"{b.lower()} {nouns[0].split()[-1]}" for b in BRANDS[leaf.top][:2]]
    return list(dict.fromkeys(phrases))


# ----------------------------------------------------------------------------- simulation


@dataclass
class _DayColumns:
    """One day's distinct events as parallel arrays, sorted by time, ids assigned."""

    first_id: int
    time: np.ndarray  # seconds after midnight
    etype: np.ndarray
    user: np.ndarray  # -1: guest / none
    session: np.ndarray  # -1: none
    product: np.ndarray  # -1: none
    quantity: np.ndarray  # 0: none
    price: np.ndarray  # nan: none
    query: np.ndarray  # index into the query list, -1: none
    country: np.ndarray  # -1: none
    device: np.ndarray  # -1: none
    aux: np.ndarray  # catalog: op row; return: purchase event number; else -1

    def __len__(self) -> int:
        return len(self.time)


_COLUMN_NAMES = (
    "time",
    "etype",
    "user",
    "session",
    "product",
    "quantity",
    "price",
    "query",
    "country",
    "device",
    "aux",
)


class _Simulation:
    """Day-by-day state: current prices, what is on sale, pending returns, id counters."""

    def __init__(self, config: SyntheticConfig, catalog: _Catalog, users: _Users):
        self.config = config
        self.catalog = catalog
        self.users = users
        self.price = catalog.base_price.copy()
        self.next_event = 1
        self.next_session = 1
        self.pending_returns: dict[int, list[dict[str, np.ndarray]]] = {}
        self.queries: list[str] = []
        offsets, counts = [], []
        for leaf in LEAVES:
            phrases = _leaf_queries(leaf)
            offsets.append(len(self.queries))
            counts.append(len(phrases))
            self.queries.extend(phrases)
        self.query_offset = np.array(offsets, dtype=np.int64)
        self.query_count = np.array(counts, dtype=np.int64)
        self._init_groups()
        self.product_ids = [f"SKU-{i + 1:06d}" for i in range(catalog.size)]

    # ---- structure shared by all days

    def _init_groups(self) -> None:
        """Products laid out by leaf (leaves by top) so every category is a contiguous range."""
        top_of_leaf = np.array([TOPS.index(leaf.top) for leaf in LEAVES], dtype=np.int64)
        leaf_rank = np.argsort(np.argsort(top_of_leaf, kind="stable"), kind="stable")
        self.by_position = np.lexsort((np.arange(self.catalog.size), leaf_rank[self.catalog.leaf]))
        position_leaf = self.catalog.leaf[self.by_position]
        ranked = leaf_rank[position_leaf]
        n_leaves, n_tops = len(LEAVES), len(TOPS)
        self.group_start = np.zeros(n_leaves + n_tops + 1, dtype=np.int64)
        self.group_end = np.zeros_like(self.group_start)
        for lf in range(n_leaves):
            self.group_start[lf] = np.searchsorted(ranked, leaf_rank[lf], side="left")
            self.group_end[lf] = np.searchsorted(ranked, leaf_rank[lf], side="right")
        tops_of_position = top_of_leaf[position_leaf]
        for top in range(n_tops):
            self.group_start[n_leaves + top] = np.searchsorted(tops_of_position, top, side="left")
            self.group_end[n_leaves + top] = np.searchsorted(tops_of_position, top, side="right")
        self.group_start[-1], self.group_end[-1] = 0, self.catalog.size
        self.group_parent = np.concatenate(
            [n_leaves + top_of_leaf, np.full(n_tops, n_leaves + n_tops), [n_leaves + n_tops]]
        )
        # A session's focus leaf within its top category, by the leaf's total popularity.
        self.leaf_by_top = np.argsort(top_of_leaf, kind="stable")
        leaf_weight = np.bincount(self.catalog.leaf, weights=self.catalog.popularity, minlength=n_leaves)
        self.leaf_cum = _cumulative_sampler(leaf_weight[self.leaf_by_top].astype(np.int64) + 1)
        sorted_tops = top_of_leaf[self.leaf_by_top]
        starts = np.searchsorted(sorted_tops, np.arange(n_tops), side="left")
        ends = np.searchsorted(sorted_tops, np.arange(n_tops), side="right")
        padded = np.concatenate([[0], self.leaf_cum])
        self.top_leaf_base = padded[starts]
        self.top_leaf_mass = padded[ends] - padded[starts]
        self.global_top_cum = np.cumsum(TOP_WEIGHTS / TOP_WEIGHTS.sum()).astype(np.float32)

    # ---- one day

    def run_day(self, rng: np.random.Generator, day: int, budget: int) -> _DayColumns:
        """Catalog ops, due returns and sessions of `day`; exactly `budget` behavioural events."""
        parts = [self._catalog_ops(day)]
        returns = self._due_returns(day, budget)
        parts.append(returns)
        self._set_alive(day)
        need = budget - len(returns["time"])
        while need > 0:
            batch = self._sessions(rng, day, need)
            need -= len(batch["time"])
            parts.append(batch)
        merged = {name: np.concatenate([part[name] for part in parts]) for name in _COLUMN_NAMES}
        order = np.argsort(merged["time"], kind="stable")
        columns = _DayColumns(self.next_event, **{name: merged[name][order] for name in _COLUMN_NAMES})
        self.next_event += len(columns)
        self._schedule_returns(rng, day, columns)
        return columns

    def _catalog_ops(self, day: int) -> dict[str, np.ndarray]:
        """Apply the day's upserts to current prices and emit them (ops run before sessions)."""
        catalog = self.catalog
        lo, hi = np.searchsorted(catalog.op_day, [day, day + 1])
        rows = np.arange(lo, hi)
        upserts = rows[catalog.op_kind[rows] == UPSERT]
        self.price[catalog.op_product[upserts]] = catalog.op_price[upserts]  # ops are in time order
        return _block(
            len(rows),
            time=catalog.op_time[rows],
            etype=catalog.op_kind[rows],
            product=catalog.op_product[rows],
            price=catalog.op_price[rows],
            aux=rows,
        )

    def _set_alive(self, day: int) -> None:
        """Per-day cumulative popularity of products a session may touch, with fallbacks."""
        catalog = self.catalog
        alive = (catalog.upsert_day <= day) & (day < catalog.delist_day)
        weights = np.where(alive, catalog.popularity, 0)[self.by_position]
        self.cum = _cumulative_sampler(weights)
        padded = np.concatenate([[0], self.cum])
        base = padded[self.group_start]
        mass = padded[self.group_end] - base
        # An empty leaf borrows its top, an empty top the whole shop (processed child → parent).
        for group in range(len(mass)):
            parent = group
            while mass[parent] == 0 and self.group_parent[parent] != parent:
                parent = self.group_parent[parent]
            base[group], mass[group] = base[parent], mass[parent]
        if mass[-1] == 0:
            raise ValueError(f"no product is on sale on day {day}")
        self.group_base, self.group_mass = base, mass

    def _sample_products(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        position = _draw(rng, self.cum, self.group_base[groups], self.group_mass[groups])
        return self.by_position[position]

    def _sessions(self, rng: np.random.Generator, day: int, need: int) -> dict[str, np.ndarray]:
        """A batch of funnel sessions trimmed to at most `need` events (last one cut short)."""
        n = max(8, int(need / 4.2) + 8)
        users, n_leaves = self.users, len(LEAVES)
        guest = rng.random(n) < self.config.guest_share
        user = np.minimum(
            np.searchsorted(users.activity_cum, rng.random(n) * users.activity_cum[-1], side="right"),
            users.size - 1,
        )
        user = np.where(guest, -1, user)
        taste = np.where(
            guest[:, None], self.global_top_cum[None, :], users.affinity_cum[np.maximum(user, 0)]
        )
        focus_top = _pick_rows(rng, taste)
        focus_leaf = self.leaf_by_top[
            _draw(rng, self.leaf_cum, self.top_leaf_base[focus_top], self.top_leaf_mass[focus_top])
        ]
        country = np.where(guest, _categorical(rng, COUNTRY_WEIGHTS, n), users.country[np.maximum(user, 0)])
        device = _categorical(rng, DEVICE_WEIGHTS, n)
        views = np.minimum(rng.geometric(VIEW_STOP_P, n), MAX_VIEWS)
        searches = _categorical(rng, SEARCHES_P, n)
        converts = rng.random(n) < CONVERT_P

        # Views: focus leaf, focus top, or another category the shopper likes.
        v_session = np.repeat(np.arange(n), views)
        v_index = _within_offsets(views)
        mode = rng.random(len(v_session))
        other_top = _pick_rows(rng, taste[v_session])
        group = np.where(
            mode < FOCUS_LEAF_P,
            focus_leaf[v_session],
            n_leaves + np.where(mode < FOCUS_TOP_P, focus_top[v_session], other_top),
        )
        v_product = self._sample_products(rng, group)
        carted = rng.random(len(v_session)) < CART_P
        quantity = (_categorical(rng, QUANTITY_P, len(v_session)) + 1) * carted
        removed = carted & (rng.random(len(v_session)) < REMOVE_P)
        bought = carted & ~removed & converts[v_session]

        # Searches: the first opens the session, a second one comes after the middle view.
        s1 = np.flatnonzero(searches >= 1)
        s2 = np.flatnonzero(searches >= 2)
        s_session = np.concatenate([s1, s2])
        s_key = np.concatenate([np.zeros(len(s1), np.int64), 4 * ((views[s2] - 1) // 2) + 3])
        leaf_of = focus_leaf[s_session]
        s_query = self.query_offset[leaf_of] + np.minimum(
            (self.query_count[leaf_of] * rng.random(len(s_session)) ** 2.2).astype(np.int64),
            self.query_count[leaf_of] - 1,
        )

        # Funnel order within a session: view j (key 4j+1), its cart (4j+2), removals, checkout.
        pieces = [
            (s_session, s_key, SEARCH, -1, 0, s_query),
            (v_session, 4 * v_index + 1, VIEW, v_product, 0, -1),
            (
                v_session[carted],
                4 * v_index[carted] + 2,
                ADD,
                v_product[carted],
                quantity[carted],
                -1,
            ),
            (
                v_session[removed],
                1000 + v_index[removed],
                REMOVE,
                v_product[removed],
                quantity[removed],
                -1,
            ),
            (
                v_session[bought],
                2000 + v_index[bought],
                PURCHASE,
                v_product[bought],
                quantity[bought],
                -1,
            ),
        ]
        session = np.concatenate([p[0] for p in pieces])
        key = np.concatenate([p[1] for p in pieces])
        order = np.lexsort((key, session))
        session = session[order]
        etype = np.concatenate([np.full(len(p[0]), p[2]) for p in pieces])[order]
        product = np.concatenate([np.broadcast_to(p[3], len(p[0])) for p in pieces])[order]
        qty = np.concatenate([np.broadcast_to(p[4], len(p[0])) for p in pieces])[order]
        query = np.concatenate([np.broadcast_to(p[5], len(p[0])) for p in pieces])[order]

        lengths = np.bincount(session, minlength=n)
        position = _within_offsets(lengths)
        time = _session_times(rng, session, position, lengths)
        keep = _trim_to(lengths, session, position, need)
        used = int(session[keep].max()) + 1 if keep.any() else 0
        session_ids = self.next_session + session
        self.next_session += used
        session, etype, product, qty, query, time = (
            a[keep] for a in (session, etype, product, qty, query, time)
        )
        return _block(
            len(session),
            time=time,
            etype=etype,
            user=user[session],
            session=session_ids[keep],
            product=product,
            quantity=qty,
            price=np.where(product >= 0, self.price[np.maximum(product, 0)], np.nan),
            query=query,
            country=country[session],
            device=device[session],
        )

    def _schedule_returns(self, rng: np.random.Generator, day: int, columns: _DayColumns) -> None:
        """Some registered buyers send an item back 2-14 days later, while it is still listed."""
        purchase = np.flatnonzero((columns.etype == PURCHASE) & (columns.user >= 0))
        purchase = purchase[rng.random(len(purchase)) < RETURN_P]
        back_on = day + rng.integers(2, 15, len(purchase))
        ok = (back_on < self.config.days) & (back_on < self.catalog.delist_day[columns.product[purchase]])
        purchase, back_on = purchase[ok], back_on[ok]
        if not len(purchase):
            return
        quantity = rng.integers(1, columns.quantity[purchase].astype(np.int64) + 1)
        time = rng.integers(*RETURN_SLOT, len(purchase))
        for target in np.unique(back_on).tolist():
            rows = purchase[back_on == target]
            pick = back_on == target
            self.pending_returns.setdefault(target, []).append(
                _block(
                    len(rows),
                    time=time[pick],
                    etype=np.full(len(rows), RETURN),
                    user=columns.user[rows],
                    product=columns.product[rows],
                    quantity=quantity[pick],
                    price=columns.price[rows],
                    country=columns.country[rows],
                    aux=columns.first_id + rows,
                )
            )

    def _due_returns(self, day: int, budget: int) -> dict[str, np.ndarray]:
        """Returns due today, at most `budget` of them (the day's event total is exact)."""
        chunks = self.pending_returns.pop(day, [])
        if not chunks:
            return _block(0)
        return {name: np.concatenate([c[name] for c in chunks])[:budget] for name in _COLUMN_NAMES}

    # ---- serialisation

    def payloads(self, day: int, columns: _DayColumns, fmt: str) -> list:
        """The day's events as JSON bytes (jsonl) or row dicts (parquet), in column order.

        JSON Lines keeps only the bytes (one dict alive at a time); Parquet needs the dicts.
        """
        stamps = _stamps(self.config.start_date + timedelta(days=day), columns.time)
        rows = self._rows(columns, stamps)
        if fmt == "jsonl":
            return _compact_lines(rows)
        return list(rows)

    def _rows(self, columns: _DayColumns, stamps: list[str]) -> Iterator[dict]:
        """One envelope dict per event; the column lists make this a plain Python loop."""
        product_ids, queries = self.product_ids, self.queries
        session_props = [[{"country": c, "device": d} for d in DEVICES] for c in COUNTRIES]
        fields = (
            columns.etype.tolist(),
            stamps,
            columns.user.tolist(),
            columns.session.tolist(),
            columns.product.tolist(),
            columns.quantity.tolist(),
            columns.price.tolist(),
            columns.query.tolist(),
            columns.country.tolist(),
            columns.device.tolist(),
            columns.aux.tolist(),
        )
        number = columns.first_id
        for etype, stamp, user, session, product, qty, price, query, country, device, aux in zip(
            *fields, strict=True
        ):
            if etype == UPSERT:
                properties = self._upsert_properties(aux)
            elif etype == DELIST:
                properties = {"reason": DELIST_REASONS[aux % len(DELIST_REASONS)]}
            elif etype == RETURN:
                properties = {
                    "country": COUNTRIES[country],
                    "reason": RETURN_REASONS[aux % len(RETURN_REASONS)],
                    "purchase_event_id": f"E{aux:010d}",
                }
            else:
                properties = session_props[country][device]
            priced = price == price  # nan marks "no price"
            yield {
                "event_id": f"E{number:010d}",
                "event_type": EVENT_TYPES[etype],
                "occurred_at": stamp,
                "user_id": f"U-{user + 1:07d}" if user >= 0 else None,
                "session_id": f"S-{session:09d}" if session >= 0 else None,
                "product_id": product_ids[product] if product >= 0 else None,
                "quantity": qty or None,
                "price": price if priced else None,
                "currency": CURRENCY if priced else None,
                "query": queries[query] if query >= 0 else None,
                "properties": properties,
            }
            number += 1

    def _upsert_properties(self, op_row: int) -> dict:
        catalog = self.catalog
        product, tone = int(catalog.op_product[op_row]), int(catalog.op_tone[op_row])
        return {
            "title": catalog.title(product, tone),
            "description": catalog.description(product, tone),
            "category": LEAVES[catalog.leaf[product]].path,
            "brand": catalog.brand[product],
        }


def _compact_lines(rows: Iterator[dict]) -> list[bytes]:
    """JSON lines as tightly sized bytes objects.

    orjson returns each result in a ~4 KiB allocation; holding a day of them (up to ~400k
    lines at 1e7 events) would cost gigabytes. Streaming them through one buffer and
    splitting it gives exact-size objects. orjson escapes newlines inside strings, so
    b"\\n" only ever separates lines.
    """
    buffer = bytearray()
    for row in rows:
        buffer += orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    return bytes(buffer).split(b"\n")[:-1]


def _block(n: int, **columns) -> dict[str, np.ndarray]:
    """A column dict with defaults for the columns a part of the day does not have."""
    defaults = {
        "time": 0,
        "etype": 0,
        "user": -1,
        "session": -1,
        "product": -1,
        "quantity": 0,
        "price": np.nan,
        "query": -1,
        "country": -1,
        "device": -1,
        "aux": -1,
    }
    dtypes = {"price": np.float64}
    out = {}
    for name in _COLUMN_NAMES:
        value = columns.get(name, defaults[name])
        out[name] = np.broadcast_to(np.asarray(value, dtype=dtypes.get(name, np.int64)), (n,)).copy()
    return out


def _pick_rows(rng: np.random.Generator, cum_rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a [rows, k] cumulative-probability matrix."""
    if not len(cum_rows):
        return np.zeros(0, dtype=np.int64)
    u = rng.random(len(cum_rows)) * cum_rows[:, -1]
    return np.minimum((cum_rows < u[:, None]).sum(axis=1), cum_rows.shape[1] - 1).astype(np.int64)


def _session_times(rng, session, position, lengths) -> np.ndarray:
    """Seconds after midnight: a start by the hourly profile, then 1-300 s between events.

    The start is pulled earlier when needed so the session ends before midnight; the
    longest possible session (~92 events x 300 s) still starts after SESSION_OPEN.
    """
    n = len(lengths)
    hour = SESSION_HOURS[_categorical(rng, SESSION_HOUR_WEIGHTS, n)]
    start = hour * HOUR + rng.integers(0, HOUR, n)
    gaps = np.clip(np.rint(rng.lognormal(np.log(25.0), 0.9, len(session))), 1, MAX_GAP_S).astype(np.int64)
    gaps[position == 0] = 0
    running = np.cumsum(gaps)
    offset = running - np.repeat(running[np.cumsum(lengths) - lengths], lengths)
    duration = offset[np.cumsum(lengths) - 1]  # every session has at least one view
    start = np.maximum(np.minimum(start, DAY - 1 - duration), SESSION_OPEN)
    return start[session] + offset


def _trim_to(lengths: np.ndarray, session: np.ndarray, position: np.ndarray, need: int) -> np.ndarray:
    """Keep whole sessions in order until `need` events, cutting the last one short."""
    ends = np.cumsum(lengths)
    last = int(np.searchsorted(ends, need, side="left"))
    if last >= len(lengths):
        return np.ones(len(session), dtype=bool)
    allowed = need - (ends[last - 1] if last else 0)
    return (session < last) | ((session == last) & (position < allowed))


def _stamps(day: date, seconds: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings ("2024-01-01T10:00:00Z") for seconds after midnight of `day`."""
    midnight = np.datetime64(day.isoformat(), "s")
    text = np.datetime_as_string(midnight + seconds.astype("timedelta64[s]"), unit="s")
    return [f"{t}Z" for t in text.tolist()]


# ----------------------------------------------------------------------------- landing


class _LandingWriter:
    """Routes each day's payloads to landing days (late, duplicated) and writes the files."""

    def __init__(self, landing_root: Path, config: SyntheticConfig, fmt: str, rng: np.random.Generator):
        self.root = landing_root
        self.config = config
        self.fmt = fmt
        self.rng = rng
        self.pending: dict[int, list[tuple[float, object]]] = {}
        self.summary = SyntheticSummary(by_type={name: 0 for name in EVENT_TYPES})
        self.next_malformed = 1

    def add_day(self, rng: np.random.Generator, day: int, columns: _DayColumns, payloads: list) -> None:
        n = len(payloads)
        config, summary = self.config, self.summary
        summary.events += n
        for code, count in zip(*np.unique(columns.etype, return_counts=True), strict=True):
            summary.by_type[EVENT_TYPES[code]] += int(count)
        late = rng.random(n) < config.late_share
        landing = day + np.where(late, rng.integers(1, 4, n), 0)
        summary.late += int(late.sum())
        duplicate = np.flatnonzero(rng.random(n) < config.duplicate_share)
        dup_landing = landing[duplicate] + _categorical(rng, (0.6, 0.25, 0.15), len(duplicate))
        summary.duplicates += len(duplicate)
        extra_keys = rng.random(int(late.sum()) + len(duplicate)) * DAY
        moved = [(int(landing[i]), i) for i in np.flatnonzero(late).tolist()]
        moved += [(int(d), int(i)) for d, i in zip(dup_landing.tolist(), duplicate.tolist(), strict=True)]
        for key, (target, i) in zip(extra_keys.tolist(), moved, strict=True):
            self.pending.setdefault(target, []).append((key, payloads[i]))
        on_time = np.flatnonzero(~late)
        keys = columns.time[on_time].astype(float).tolist()
        self._write(day, list(zip(keys, (payloads[i] for i in on_time.tolist()), strict=True)), rng)

    def finish(self) -> SyntheticSummary:
        """Flush landing days after the last day (late lines and duplicates only)."""
        for target in sorted(self.pending):
            self._write(target, [], self.rng)
        return self.summary

    def _write(self, landing: int, lines: list[tuple[float, object]], rng: np.random.Generator) -> None:
        lines = lines + self.pending.pop(landing, [])
        if not lines:
            return
        keys = np.array([key for key, _ in lines])
        payloads = [payload for _, payload in lines]
        landing_day = self.config.start_date + timedelta(days=landing)
        if self.fmt == "jsonl":
            bad = self._malformed(
                rng,
                landing_day,
                int(rng.binomial(len(lines), self.config.malformed_share)),
                payloads,
            )
            keys = np.concatenate([keys, rng.random(len(bad)) * DAY])
            payloads += bad
            self.summary.malformed += len(bad)
        order = np.argsort(keys, kind="stable").tolist()
        ordered = [payloads[i] for i in order]
        folder = day_folder(self.root, landing_day)
        if self.fmt == "jsonl":
            path = folder / f"{FILE_STEM}.jsonl"
            write_jsonl(path, ordered)
        else:
            path = folder / f"{FILE_STEM}.parquet"
            _write_parquet(path, ordered)
        self.summary.files.append(path)
        self.summary.days += 1

    def _malformed(self, rng, landing_day: date, count: int, payloads: list[bytes]) -> list[bytes]:
        """Bad lines of five kinds, each failing the envelope for its own reason."""
        out = []
        kinds = rng.integers(0, 5, count).tolist()
        sources = rng.integers(0, len(payloads), count).tolist()
        for kind, source in zip(kinds, sources, strict=True):
            out.append(_malformed_line(kind, payloads[source], f"M{self.next_malformed:09d}", landing_day))
            self.next_malformed += 1
        return out


def _malformed_line(kind: int, template: bytes, bad_id: str, landing_day: date) -> bytes:
    """Kind 0 truncated JSON, 1 unknown type, 2 missing event_id, 3 zone-less time, 4 Latin-1."""
    if kind == 0:
        return template[: max(1, len(template) // 2)]
    record = orjson.loads(template)
    record["event_id"] = bad_id
    if kind == 1:
        record["event_type"] = ("wishlist_add", "page_ping", "checkout_started")[len(template) % 3]
    elif kind == 2:
        del record["event_id"]
    elif kind == 3:
        record["occurred_at"] = f"{landing_day.isoformat()} {record['occurred_at'][11:19]}"
    else:
        record["event_type"] = "search"
        record["product_id"] = None
        record["query"] = "CAFE_PLACEHOLDER"
        return orjson.dumps(record).replace(b"CAFE_PLACEHOLDER", "caf\u00e9 cr\u00e8me".encode("latin-1"))
    return orjson.dumps(record)


_PROPERTY_FIELDS = (
    "country",
    "device",
    "title",
    "description",
    "category",
    "brand",
    "reason",
    "purchase_event_id",
)


def _parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("event_id", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", pa.string()),
            ("user_id", pa.string()),
            ("session_id", pa.string()),
            ("product_id", pa.string()),
            ("quantity", pa.int64()),
            ("price", pa.float64()),
            ("currency", pa.string()),
            ("query", pa.string()),
            ("properties", pa.struct([(name, pa.string()) for name in _PROPERTY_FIELDS])),
        ]
    )


def _write_parquet(path: Path, rows: list[dict]) -> None:
    """Valid events only; properties as a struct so `to_pylist()` gives dicts back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=_parquet_schema())
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)

"""The product master data and the schedule of catalog events (upserts, updates, delists).

Every initial product is upserted on the first day between 00:00 and 01:00; new products
appear later (01:00-02:00), some change price or title (a new upsert, 02:00-03:00) and
some are delisted (03:00-04:00). The catalog is only touched before 05:00, while sessions
run between 05:00 and midnight, so the price a session sees is the price of its day and no
product is viewed before its upsert or after its delisting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopguide.sources.synthetic.config import DELIST, HOUR, UPSERT, SyntheticConfig
from shopguide.sources.synthetic.sampling import categorical, round_price
from shopguide.sources.synthetic.vocabulary import BENEFITS, BRANDS, LEAVES, PALETTE

INITIAL_UPSERT_SLOT = (0, HOUR)
NEW_PRODUCT_SLOT = (HOUR, 2 * HOUR)
UPDATE_SLOT = (2 * HOUR, 3 * HOUR)
DELIST_SLOT = (3 * HOUR, 4 * HOUR)

NEW_PRODUCT_SHARE = 0.12  # of the catalog appears after day one
UPDATE_SHARE = 0.10  # of products get one later upsert (price, sometimes title)
TITLE_CHANGE_SHARE = 0.25  # of those updates also rename the product
DELIST_SHARE = 0.04
# A product never delisted: beyond any day, so a continued shop (days past the first
# run's last one) keeps it on sale.
NEVER = np.iinfo(np.int64).max


@dataclass
class Catalog:
    """Arrays by product, and the catalog operations one row each, sorted by (day, time)."""

    leaf: np.ndarray
    brand: list[str]
    tone: np.ndarray
    material: np.ndarray
    noun: np.ndarray
    spec: np.ndarray
    base_price: np.ndarray
    popularity: np.ndarray  # int64 Zipf weight within the leaf
    upsert_day: np.ndarray
    delist_day: np.ndarray  # NEVER when not delisted
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

    def append_price_changes(
        self, rng: np.random.Generator, day: int, share: float, price: np.ndarray, tone: np.ndarray
    ) -> None:
        """Upserts on a day after the scheduled ones (a continued shop): a `share` of the
        products on sale get a new price, title unchanged, in the update slot. `price` and
        `tone` are the current ones by product."""
        on_sale = np.flatnonzero((self.upsert_day <= day) & (day < self.delist_day))
        chosen = on_sale[rng.random(len(on_sale)) < share]
        factor = np.clip(rng.lognormal(0.0, 0.12, len(chosen)), 0.7, 1.3)
        time = rng.integers(*UPDATE_SLOT, len(chosen))
        order = np.lexsort((chosen, time))
        new = (
            np.full(len(chosen), day, dtype=np.int64),
            time[order],
            np.full(len(chosen), UPSERT),
            chosen[order],
            round_price(price[chosen] * factor)[order],
            tone[chosen][order],
        )
        names = ("op_day", "op_time", "op_kind", "op_product", "op_price", "op_tone")
        for name, values in zip(names, new, strict=True):
            setattr(self, name, np.concatenate([getattr(self, name), values]))


def build_catalog(rng: np.random.Generator, config: SyntheticConfig) -> Catalog:
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
    base_price = round_price(medians * rng.lognormal(0.0, 0.45, count))
    popularity = _zipf_popularity(rng, leaf)

    upsert_day = np.zeros(count, dtype=np.int64)
    if days > 1:
        new = rng.random(count) < NEW_PRODUCT_SHARE
        new[: len(LEAVES)] = False  # every leaf starts with at least one product
        upsert_day[new] = rng.integers(1, days, int(new.sum()))
    delist_day = np.full(count, days, dtype=np.int64)  # `days` = not within the schedule
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
    delist_day[delist_day == days] = NEVER
    return Catalog(
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
    leaf = categorical(rng, weights, count)
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
    price = round_price(base_price[chosen] * factor)
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

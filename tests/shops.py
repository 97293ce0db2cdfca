"""Crafted shops for the ranker's tests: each a ShopData small enough to train in seconds,
with a property the test relies on written into how it is made."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from core.dbt_manifest import interaction_weights
from recommendations.ranker import RankerSettings
from recommendations.shop import ShopData

# Ranker settings that train in seconds on the crafted shops.
FAST_RANKER = RankerSettings(cutoffs=2, label_window_days=14, max_rounds=60)

START = datetime(2024, 1, 1)
EVENT_SCHEMA = {
    "user_id": pl.Utf8,
    "session_id": pl.Utf8,
    "product_id": pl.Utf8,
    "event_type": pl.Utf8,
    "occurred_at": pl.Datetime("us"),
    "country": pl.Utf8,
}


def catalog(n_products: int, seed: int = 0, dim: int = 8, listed: dict[str, datetime] | None = None):
    """(dim_products, product vectors) for products p0000..; categories c0..c3."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:04d}" for i in range(n_products)]
    listed = listed or {}
    products = pl.DataFrame(
        {
            "product_id": ids,
            "title": [f"product {i}" for i in range(n_products)],
            "top_category": [f"c{i % 4}" for i in range(n_products)],
            "category_path": [f"c{i % 4}" for i in range(n_products)],
            "price": (1.0 + rng.random(n_products) * 20).round(2).tolist(),
            "is_recommendable": [True] * n_products,
            "first_listed_at": [listed.get(p, START) for p in ids],
        },
        schema_overrides={"first_listed_at": pl.Datetime("us")},
    )
    vectors = rng.normal(size=(n_products, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    product_vectors = pl.DataFrame(
        {"product_id": ids, "vector": vectors.tolist()},
        schema={"product_id": pl.Utf8, "vector": pl.List(pl.Float32)},
    )
    return products, product_vectors


def shop(rows: list[tuple], products: pl.DataFrame, product_vectors: pl.DataFrame) -> ShopData:
    events = pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")
    users = events.filter(pl.col("user_id").is_not_null()).group_by("user_id").agg(pl.col("country").first())
    return ShopData(
        products=products,
        product_vectors=product_vectors,
        users=users.sort("user_id"),
        events=events,
        interaction_weights=interaction_weights(),
    )


def cycling_shop(n_users: int = 120, days: int = 150, seed: int = 1) -> ShopData:
    """The planted signal: every shopper bought three "old favourites" many times in the first
    two months and then stopped; since day 40 they re-order two "current" products every
    ~10 days. Counting purchases puts the old favourites first; what the shopper buys next is
    the current products, which only recency relative to their own cycle reveals."""
    rng = np.random.default_rng(seed)
    products, vectors = catalog(60, seed)
    ids = products["product_id"].to_list()
    rows = []
    for u in range(n_users):
        user, country = f"u{u:03d}", "UK" if u % 3 else "FR"
        picks = rng.choice(60, size=5, replace=False)
        old, current = picks[:3], picks[3:]
        for day in range(0, 60, 7):  # 9 baskets of the old favourites
            at = START + timedelta(days=day + int(rng.integers(0, 3)), hours=10)
            for p in old:
                rows.append((user, f"{user}-o{day}", ids[p], "purchase", at, country))
        for day in range(40 + int(rng.integers(0, 10)), days, 10):  # the current cycle
            at = START + timedelta(days=day, hours=int(rng.integers(8, 20)))
            basket = [*current, int(rng.integers(0, 60))]
            for p in basket:
                rows.append((user, f"{user}-c{day}", ids[p], "purchase", at, country))
    return shop(rows, products, vectors)


def one_off_shop(n_users: int = 200, days: int = 90, seed: int = 2) -> ShopData:
    """Nobody buys anything twice: every shopper's purchases are distinct products, and
    taste follows a category (so there is still something to learn)."""
    rng = np.random.default_rng(seed)
    products, vectors = catalog(80, seed)
    ids = products["product_id"].to_list()
    rows = []
    for u in range(n_users):
        user = f"u{u:03d}"
        taste = int(rng.integers(0, 4))
        liked = [i for i in range(80) if i % 4 == taste]
        for n, p in enumerate(rng.permutation(liked)[:6]):
            at = START + timedelta(days=int(rng.integers(0, days)), hours=n)
            rows.append((user, f"{user}-{n}", ids[p], "purchase", at, "UK"))
    return shop(rows, products, vectors)


def one_day_shop(n_users: int = 30, seed: int = 3) -> ShopData:
    """A shop whose whole log is one day of purchases and views."""
    rng = np.random.default_rng(seed)
    products, vectors = catalog(20, seed)
    ids = products["product_id"].to_list()
    rows = []
    for u in range(n_users):
        for n in range(3):
            at = START + timedelta(hours=int(rng.integers(0, 23)), minutes=n)
            kind = "purchase" if n < 2 else "view"
            rows.append((f"u{u:02d}", f"s{u}", ids[int(rng.integers(0, 20))], kind, at, "UK"))
    return shop(rows, products, vectors)


def large_catalog_shop(n_products: int = 50_000, n_users: int = 3_000, days: int = 120):
    """A big catalog and few shoppers: what dense products × products matrices cannot hold
    (50k products: 10 GB in float32)."""
    from shopguide.sources.memory_shop import repeat_buyer_shop

    return repeat_buyer_shop(n_users, n_products, days, baskets=6.0, dim=16, seed=4)

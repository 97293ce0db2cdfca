"""A shop built directly in memory (catalog, vectors, shoppers, purchases as polars frames),
for what needs a large shop without the pipeline: the ranker's scale benchmark and memory
tests. Landing files for the pipeline come from shopguide.sources.synthetic instead."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from core.dbt_manifest import interaction_weights
from recommendations.shop import ShopData

START = datetime(2024, 1, 1)


def repeat_buyer_shop(
    users: int, products: int, days: int, baskets: float = 4.0, dim: int = 32, seed: int = 0
) -> ShopData:
    """Purchases only: each shopper has three favourites they re-order and otherwise buys
    Zipf-popular products (four lines a basket, half of them favourites); baskets per shopper
    ~ Poisson(`baskets`), at least one, on uniform days from START. Random unit product
    vectors of `dim` dimensions stand in for title embeddings."""
    rng = np.random.default_rng(seed)
    product_ids = pl.Series("product_id", np.arange(products)).cast(pl.Utf8).str.zfill(7)
    vectors = rng.standard_normal((products, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    category = pl.Series(np.arange(products) % 20).cast(pl.Utf8)
    catalog = pl.DataFrame(
        {
            "product_id": product_ids,
            "title": "product " + product_ids,
            "top_category": category,
            "category_path": category,
            "price": (1 + rng.random(products) * 50).round(2),
            "is_recommendable": np.ones(products, dtype=bool),
            "first_listed_at": [START] * products,
        }
    )
    product_vectors = pl.DataFrame(
        {"product_id": product_ids, "vector": pl.Series(vectors).cast(pl.List(pl.Float32))}
    )
    per_user = np.maximum(rng.poisson(baskets, users), 1)
    owner = np.repeat(np.arange(users), per_user)
    n_baskets = len(owner)
    day = rng.integers(0, days, n_baskets)
    popular = np.minimum(rng.zipf(1.3, n_baskets * 4) - 1, products - 1).reshape(n_baskets, 4)
    favourites = rng.integers(0, products, (users, 3))
    lines = np.where(rng.random((n_baskets, 4)) < 0.5, favourites[owner][:, [0, 1, 2, 0]], popular)
    user_ids = "u" + pl.Series(np.arange(users)).cast(pl.Utf8).str.zfill(8)
    events = pl.DataFrame(
        {
            "user_id": np.repeat(owner, 4),
            "session_id": np.repeat(np.arange(n_baskets), 4),
            "product_id": lines.ravel(),
            "occurred_at": np.repeat(day, 4),
        }
    ).select(
        user_id=pl.format("u{}", pl.col("user_id").cast(pl.Utf8).str.zfill(8)),
        session_id=pl.col("session_id").cast(pl.Utf8),
        product_id=pl.col("product_id").cast(pl.Utf8).str.zfill(7),
        event_type=pl.lit("purchase"),
        occurred_at=pl.lit(START) + pl.duration(days=pl.col("occurred_at"), hours=12),
        country=pl.lit("UK"),
    )
    shoppers = pl.DataFrame({"user_id": user_ids, "country": ["UK"] * users})
    return ShopData(
        products=catalog,
        product_vectors=product_vectors,
        users=shoppers,
        events=events,
        interaction_weights=interaction_weights(),
    )

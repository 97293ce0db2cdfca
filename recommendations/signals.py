"""The three signals a recommendation is made of, as plain functions over plain arrays.

- co-occurrence: how often two products share a basket or a browsing session, normalised
  (cosine over sessions) so that best-sellers, which co-occur with everything, do not
  swamp the list;
- popularity: purchases (and, weaker, carts and views) decayed by age;
- history: a shopper's weight on each product (embeddings.users.product_weights).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import scipy.sparse as sp

POPULARITY_EVENT_WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.3, "view": 0.05}


def cooccurrence_matrix(session_products: pl.DataFrame, n_products: int) -> sp.csr_matrix:
    """session_products (session_key, row) → products × products, cosine-normalised, zero diagonal."""
    pairs = session_products.unique()
    if pairs.is_empty():
        return sp.csr_matrix((n_products, n_products), dtype=np.float32)
    sessions = pairs["session_key"].cast(pl.Categorical).to_physical().to_numpy()
    rows = pairs["row"].to_numpy()
    baskets = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (sessions, rows)),
        shape=(int(sessions.max()) + 1, n_products),
    )
    counts = (baskets.T @ baskets).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    occurrences = np.asarray(baskets.sum(axis=0)).ravel()
    scale = 1.0 / np.sqrt(np.maximum(occurrences, 1.0))
    normalised = sp.diags(scale) @ counts @ sp.diags(scale)
    return normalised.astype(np.float32).tocsr()


def decayed_popularity(
    events: pl.DataFrame, n_products: int, as_of: datetime, half_life_days: float
) -> np.ndarray:
    """events (row, event_type, occurred_at) → per-product popularity in [0, 1]."""
    weight = pl.col("event_type").replace_strict(
        POPULARITY_EVENT_WEIGHTS, default=0.0, return_dtype=pl.Float64
    )
    age_days = (pl.lit(as_of) - pl.col("occurred_at")).dt.total_seconds() / 86_400.0
    scored = (
        events.filter(pl.col("occurred_at") <= as_of)
        .with_columns(w=weight * 0.5 ** (age_days / half_life_days))
        .group_by("row")
        .agg(pl.col("w").sum())
    )
    popularity = np.zeros(n_products, dtype=np.float32)
    popularity[scored["row"].to_numpy()] = scored["w"].to_numpy()
    peak = popularity.max(initial=0.0)
    return popularity / peak if peak > 0 else popularity


def sparse_user_product(pairs: pl.DataFrame, n_users: int, n_products: int, value: str) -> sp.csr_matrix:
    """pairs (user_row, row, <value>) → users × products."""
    return sp.csr_matrix(
        (pairs[value].to_numpy().astype(np.float32), (pairs["user_row"].to_numpy(), pairs["row"].to_numpy())),
        shape=(n_users, n_products),
    )

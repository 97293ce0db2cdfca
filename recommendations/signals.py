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

from recommendations.topk import top_per_row

POPULARITY_EVENT_WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.3, "view": 0.05}


# Products whose co-occurrence rows are computed at once: the matrix is built a block of rows
# at a time, so memory holds the result and one block, not the product's several full-size
# intermediates (at 10M events those took the offline evaluation past 9 GB).
COOCCURRENCE_BLOCK = 2048
# Pairs the co-occurrence matrix may hold (160 MB): each product keeps its strongest
# max(COOCCURRENCE_MIN_NEIGHBORS, COOCCURRENCE_PAIRS / products) neighbours. A best-seller
# co-occurs with nearly everything, so uncapped rows make history × co-occurrence as wide as
# the catalog for every shopper who bought one; the cap bounds both memory and that product
# (100k products: 200 neighbours each). Online Retail's 3,800 products keep every pair.
COOCCURRENCE_PAIRS = 20_000_000
COOCCURRENCE_MIN_NEIGHBORS = 50


def cooccurrence_neighbors(n_products: int) -> int:
    """How many neighbours each product keeps in the co-occurrence matrix."""
    return max(COOCCURRENCE_MIN_NEIGHBORS, COOCCURRENCE_PAIRS // max(n_products, 1))


def cooccurrence_matrix(session_products: pl.DataFrame, n_products: int) -> sp.csr_matrix:
    """session_products (session_key, row) → products × products, cosine-normalised, zero
    diagonal, each row keeping its `cooccurrence_neighbors` largest values (ties: the lowest
    columns)."""
    pairs = session_products.unique()
    if pairs.is_empty():
        return sp.csr_matrix((n_products, n_products), dtype=np.float32)
    sessions = pairs["session_key"].cast(pl.Categorical).to_physical().to_numpy()
    sessions = np.unique(sessions, return_inverse=True)[1].reshape(-1)  # dense 0..S-1
    rows = pairs["row"].to_numpy()
    baskets = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (sessions, rows)),
        shape=(int(sessions.max()) + 1, n_products),
    )
    occurrences = np.asarray(baskets.sum(axis=0)).ravel()
    scale = 1.0 / np.sqrt(np.maximum(occurrences, 1.0))
    by_product = baskets.T.tocsr()
    neighbors = cooccurrence_neighbors(n_products)
    pieces = []
    for start in range(0, n_products, COOCCURRENCE_BLOCK):
        counts = (by_product[start : start + COOCCURRENCE_BLOCK] @ baskets).tocoo()
        off_diagonal = counts.col != counts.row + start
        row, col = counts.row[off_diagonal], counts.col[off_diagonal]
        values = (counts.data[off_diagonal] * scale[row + start] * scale[col]).astype(np.float32)
        piece = sp.csr_matrix((values, (row, col)), shape=(counts.shape[0], n_products))
        pieces.append(top_per_row(piece, neighbors) if np.diff(piece.indptr).max() > neighbors else piece)
    return sp.vstack(pieces, format="csr", dtype=np.float32)


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

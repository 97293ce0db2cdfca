"""The methods a practitioner tries first, scored on the same split as shopguide's ranker.

Each baseline is fitted on the training interactions (`X`, users × products, 1 where the
user touched the product, from RecInputs.history) or on the signed-in orders
(RecInputs.orders), and returns dense scores for a block of users. Users with no training
history get all-zero personal scores; the protocol breaks ties by all-time popularity, so
every method falls back to the best-sellers for them, which is what any of these would do
in production. TIFU-KNN, the next-basket baseline, lives in evaluation.next_basket.

Nothing here holds a dense products × products matrix (50k products → 10 GB in float32):
- item-kNN keeps each product's top-n neighbours in a sparse matrix, computed a block of
  products at a time, so memory follows the number of co-occurring pairs, not P²;
- EASE needs the dense inverse of the Gram matrix (P² memory, O(P³) time: 100k products
  would be 80 GB and hours), so it is fitted on the `max_products` products most users
  touched and scores zero elsewhere: the long tail, where the protocol's popularity
  tiebreak orders the products, as it does for every method's zero scores.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from recommendations.collaborative import (  # noqa: F401  (re-exported: the baselines)
    ALS,
    EASE,
    ItemKNN,
    ease_weights,
    interactions,
    item_cosine,
    most_touched,
    top_per_row,
)
from recommendations.inputs import RecInputs, purchase_counts  # noqa: F401  (re-exported)


class Popularity:
    """The same best-seller list for everyone (all time, or the last `days` days)."""

    def __init__(self, days: float | None = None):
        self.days = days
        self.name = "popularity" if days is None else "popularity_recent"
        self.params = {} if days is None else {"days": days}

    def fit(self, inputs: RecInputs) -> Popularity:
        counts = purchase_counts(inputs, self.days)
        self.scores_row = counts / max(float(counts.max(initial=0.0)), 1.0)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_row, (len(rows), len(self.scores_row))).copy()


class RepeatPurchase:
    """Buy it again: the shopper's own decayed history, nothing else (repurchase policy only)."""

    name = "repeat_purchase"
    params: dict = {}

    def fit(self, inputs: RecInputs) -> RepeatPurchase:
        self.history = inputs.history
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.history[rows].toarray()


class BuyAgainByCount:
    """Buy it again, by count: the shopper's products by how many times they were bought,
    equal counts by the latest purchase first, then everything else by recent popularity
    (purchases in the last `days` days). Repurchase policy only: new_items forbids the
    products it puts first.

    Scores are tiers that cannot overlap in float32, even with the protocol's tiebreak added:
    - never bought: recent popularity / its maximum, in [0, 1];
    - bought: 2 + level + popularity / 2, where level is the dense rank (0, 1, ...) of
      (count, latest purchase) within the shopper, so count outranks recency outright and
      equal (count, latest purchase) fall back to popularity. Levels are small integers, so
      they stay exact whatever the timestamps (raw microseconds would not fit a float32).
    """

    name = "buy_again_count"

    def __init__(self, days: float = 30.0):
        self.days = days
        self.params = {"days": days}

    def fit(self, inputs: RecInputs) -> BuyAgainByCount:
        counts = purchase_counts(inputs, self.days)
        self.popular = (counts / max(float(counts.max(initial=0.0)), 1.0)).astype(np.float32)
        self.levels = bought_levels(inputs.orders, inputs.users.height, inputs.products.height)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        scores = np.broadcast_to(self.popular, (len(rows), len(self.popular))).copy()
        bought = self.levels[rows]
        owners = np.repeat(np.arange(len(rows)), np.diff(bought.indptr))
        scores[owners, bought.indices] = 2.0 + bought.data + self.popular[bought.indices] / 2
        return scores


def bought_levels(orders: pl.DataFrame, n_users: int, n_products: int) -> sp.csr_matrix:
    """Users × products: per bought product, the dense rank of (purchase count, latest
    purchase) within its buyer, 0 for the fewest and oldest. Absent = never bought."""
    if orders.is_empty():
        return sp.csr_matrix((n_users, n_products), dtype=np.float32)
    bought = (
        orders.group_by("user_row", "row")
        .agg(count=pl.len(), latest=pl.col("occurred_at").max())
        .sort("user_row", "count", "latest")
    )
    users = bought["user_row"].to_numpy()
    count = bought["count"].to_numpy()
    latest = bought["latest"].to_physical().to_numpy()
    new_user = np.r_[True, users[1:] != users[:-1]]
    new_level = new_user | np.r_[True, (count[1:] != count[:-1]) | (latest[1:] != latest[:-1])]
    level = np.cumsum(new_level)
    # Subtract each user's first level so ranks restart at 0 per shopper.
    first = np.maximum.accumulate(np.where(new_user, level, 0))
    return sp.csr_matrix(
        ((level - first).astype(np.float32), (users, bought["row"].to_numpy())), shape=(n_users, n_products)
    )


class ContentOnly:
    """The shopper's embedding (weighted mean of their products' title vectors) · product vector."""

    name = "content"
    params: dict = {}

    def fit(self, inputs: RecInputs) -> ContentOnly:
        self.users, self.products = inputs.user_matrix, inputs.product_matrix
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.users[rows] @ self.products.T

"""TIFU-KNN, the next-basket baseline (Hu, He, Gao & Zhang, "Modeling Personalized Item
Frequency Information for Next-basket Recommendation", SIGIR 2020).

A user vector is the shopper's time-decayed item frequencies: baskets (binary multi-hot, in
the order of their first purchase) are cut into groups of `group_size` consecutive baskets
counted from the most recent one (the oldest group may be shorter); within a group

    g = (1/|g|) · Σ_i within_decay^i · basket_i     (i = 0 for the group's last basket),

and over the user's G groups

    u = (1/G) · Σ_j group_decay^j · g_j             (j = 0 for the last group).

Prediction = alpha · u + (1 − alpha) · mean of the `neighbors` users most cosine-similar to
u (the user excluded; only users sharing a product, so with fewer candidates the mean is
over those found). Shoppers without orders get zero scores.

Defaults are the paper's TaFeng setting (k = 300, m = 7, r_b = 0.9, r_g = 0.7, alpha = 0.7),
the dataset closest to a shop's order log. Unlike the authors' code (and cornac's port), where
m is the number of equal groups and the within-group decay runs over the whole history, m
here is the number of baskets per group, counted from the recent end, as specified for us.

Scale: user vectors are a sparse users × products matrix; neighbours are found only for the
rows a `scores` call asks for, a chunk of them at a time against all users by a sparse
product, the chunk sized so its similarities stay under `budget` entries (≈ 512 MB as one
float32 and one int32 each at worst); only the top `neighbors` per user are kept. Nothing
users × users or users × products is ever dense beyond the block of scores returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from recommendations.collaborative import top_per_row
from recommendations.inputs import RecInputs


@dataclass
class TIFUKNN:
    neighbors: int = 300
    group_size: int = 7
    within_decay: float = 0.9
    group_decay: float = 0.7
    alpha: float = 0.7
    budget: int = 2**26  # similarity entries per chunk of query users
    name: str = "tifu_knn"

    @property
    def params(self) -> dict:
        return {
            "neighbors": self.neighbors,
            "group_size": self.group_size,
            "within_decay": self.within_decay,
            "group_decay": self.group_decay,
            "alpha": self.alpha,
        }

    def fit(self, inputs: RecInputs) -> TIFUKNN:
        self.vectors = user_vectors(
            inputs.orders,
            inputs.users.height,
            inputs.products.height,
            self.group_size,
            self.within_decay,
            self.group_decay,
        )
        self.unit = unit_rows(self.vectors)
        self.unit_columns = self.unit.T.tocsr()
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        n_users, n_products = self.vectors.shape
        scores = np.zeros((len(rows), n_products), dtype=np.float32)
        chunk = max(1, self.budget // max(n_users, 1))
        for start in range(0, len(rows), chunk):
            queried = np.asarray(rows[start : start + chunk])
            mean = neighbour_means(self.unit[queried] @ self.unit_columns, queried, self.neighbors)
            blend = self.alpha * self.vectors[queried] + (1 - self.alpha) * (mean @ self.vectors)
            blend.astype(np.float32, copy=False).toarray(out=scores[start : start + chunk])
        return scores


def basket_weights(
    orders: pl.DataFrame, group_size: int, within_decay: float, group_decay: float
) -> pl.DataFrame:
    """One row per (user_row, basket): the weight its multi-hot vector carries in the user
    vector, within_decay^i / |group| · group_decay^j / G (see the module docstring)."""
    baskets = (
        orders.group_by("user_row", "basket")
        .agg(first=pl.col("occurred_at").min())
        .sort("user_row", "first", "basket")
        .with_columns(
            age=pl.len().over("user_row").cast(pl.Int64) - 1 - pl.int_range(pl.len()).over("user_row"),
            count=pl.len().over("user_row").cast(pl.Int64),
        )
        .with_columns(group=pl.col("age") // group_size, position=pl.col("age") % group_size)
    )
    groups = (pl.col("count") + group_size - 1) // group_size
    members = pl.min_horizontal(pl.lit(group_size), pl.col("count") - pl.col("group") * group_size)
    return baskets.select(
        "user_row",
        "basket",
        weight=pl.lit(within_decay).pow(pl.col("position"))
        / members
        * pl.lit(group_decay).pow(pl.col("group"))
        / groups,
    )


def user_vectors(
    orders: pl.DataFrame,
    n_users: int,
    n_products: int,
    group_size: int,
    within_decay: float,
    group_decay: float,
) -> sp.csr_matrix:
    """Users × products TIFU vectors (float32); users without orders are empty rows."""
    if orders.is_empty():
        return sp.csr_matrix((n_users, n_products), dtype=np.float32)
    weights = basket_weights(orders, group_size, within_decay, group_decay)
    # A basket is binary: a product bought twice in one basket counts once.
    items = orders.select("user_row", "basket", "row").unique().join(weights, on=["user_row", "basket"])
    return sp.csr_matrix(
        (
            items["weight"].to_numpy().astype(np.float32),
            (items["user_row"].to_numpy(), items["row"].to_numpy()),
        ),
        shape=(n_users, n_products),
    )  # duplicates (a product in several baskets) are summed


def unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ matrix)


def neighbour_means(similarity: sp.csr_matrix, users: np.ndarray, neighbors: int) -> sp.csr_matrix:
    """From query users × all users cosine similarities: each query user's `neighbors` most
    similar other users, as the row weights (1/their count) that average their vectors."""
    similarity = similarity.tocsr()
    owners = np.repeat(np.arange(similarity.shape[0]), np.diff(similarity.indptr))
    similarity.data[similarity.indices == users[owners]] = 0.0  # never one's own neighbour
    similarity.eliminate_zeros()
    top = top_per_row(similarity, neighbors)
    found = np.diff(top.indptr)
    top.data = np.repeat(1.0 / np.maximum(found, 1), found).astype(np.float32)
    return top

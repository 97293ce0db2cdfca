"""The methods a practitioner tries first, scored on the same split as shopguide's hybrid.

Each baseline is fitted on the training interactions (`X`, users × products, 1 where the
user touched the product, from RecInputs.history) and returns dense scores for a block
of users. Users with no training history get all-zero personal scores; the protocol
breaks ties by all-time popularity, so every method falls back to the best-sellers for
them, which is what any of these would do in production.

EASE and item-kNN hold a dense products × products matrix: fine for an offline
evaluation of catalogs up to tens of thousands of products (50k → 10 GB in float32).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from recommendations.inputs import RecInputs


def interactions(inputs: RecInputs) -> sp.csr_matrix:
    """Binary users × products: any positive decayed interaction before the cut-off."""
    binary = inputs.history.copy()
    binary.data = (binary.data > 0).astype(np.float32)
    binary.eliminate_zeros()
    return binary.tocsr()


def purchase_counts(inputs: RecInputs, since_days: float | None = None) -> np.ndarray:
    """Purchases per product position before the cut-off (optionally only the last N days)."""
    purchases = inputs.purchases
    if since_days is not None:
        purchases = purchases.filter(pl.col("occurred_at") >= inputs.as_of - timedelta(days=since_days))
    counted = (
        purchases.group_by("product_id")
        .agg(n=pl.len())
        .join(inputs.products.select("product_id", "row"), on="product_id")
    )
    counts = np.zeros(inputs.products.height, dtype=np.float32)
    counts[counted["row"].to_numpy()] = counted["n"].to_numpy()
    return counts


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


@dataclass
class ItemKNN:
    """Item-based kNN on co-occurrence: cosine between products' user columns, each product
    keeping its `neighbors` most similar; score(u, ·) = X[u] @ S."""

    neighbors: int = 100
    name: str = "item_knn"
    similarity: np.ndarray = field(init=False, repr=False)

    @property
    def params(self) -> dict:
        return {"neighbors": self.neighbors}

    def fit(self, inputs: RecInputs) -> ItemKNN:
        self.x = interactions(inputs)
        self.similarity = item_cosine(self.x, self.neighbors)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.x[rows] @ self.similarity)


def item_cosine(x: sp.csr_matrix, neighbors: int) -> np.ndarray:
    """Dense products × products cosine similarity, zero diagonal, top `neighbors` per row."""
    counts = (x.T @ x).toarray().astype(np.float32)
    np.fill_diagonal(counts, 0.0)
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    similarity = counts / norms[:, None] / norms[None, :]
    if neighbors < similarity.shape[1]:
        weakest = np.argpartition(-similarity, neighbors, axis=1)[:, neighbors:]
        np.put_along_axis(similarity, weakest, 0.0, axis=1)
    return similarity


@dataclass
class EASE:
    """Embarrassingly Shallow Autoencoder (Steck, 2019), closed form:
    P = (XᵀX + λI)⁻¹,  B = −P / diag(P),  diag(B) = 0,  score(u, ·) = X[u] @ B."""

    l2: float = 500.0
    name: str = "ease"

    @property
    def params(self) -> dict:
        return {"l2": self.l2}

    def fit(self, inputs: RecInputs) -> EASE:
        self.x = interactions(inputs)
        self.weights = ease_weights(self.x, self.l2)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.x[rows] @ self.weights)


def ease_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    weights = inverse / -np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


@dataclass
class ALS:
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky) from the `implicit`
    package: confidence 1 + alpha·x, `factors` dimensions; single-threaded so a re-run
    gives the same factors."""

    factors: int = 64
    alpha: float = 10.0
    regularization: float = 0.05
    iterations: int = 15
    name: str = "als"

    @property
    def params(self) -> dict:
        return {"factors": self.factors, "alpha": self.alpha, "regularization": self.regularization}

    def fit(self, inputs: RecInputs) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit warns (and slows) with threaded BLAS
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=0,
                num_threads=1,
            )
            model.fit(interactions(inputs), show_progress=False)
        self.users, self.items = model.user_factors, model.item_factors
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.users[rows] @ self.items.T


class ContentOnly:
    """The shopper's embedding (weighted mean of their products' title vectors) · product vector."""

    name = "content"
    params: dict = {}

    def fit(self, inputs: RecInputs) -> ContentOnly:
        self.users, self.products = inputs.user_matrix, inputs.product_matrix
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.users[rows] @ self.products.T

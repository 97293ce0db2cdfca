"""Collaborative models over the users × products interactions, shared by the candidate
generators and the offline evaluation's baselines. None holds a dense products × products
matrix (50k products → 10 GB in float32):
- item-kNN keeps each product's top-n neighbours in a sparse matrix, computed a block of
  products at a time, so memory follows the number of co-occurring pairs, not P²;
- EASE needs the dense inverse of the Gram matrix (P² memory, O(P³) time: 100k products
  would be 80 GB and hours), so it is fitted on the `max_products` products most users
  touched and scores zero elsewhere;
- ALS (`implicit`) keeps users × factors and products × factors.
Each has `fit(inputs)` and `scores(rows)` → a dense block of len(rows) × products.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recommendations.inputs import RecInputs
from recommendations.parallel import cores
from recommendations.topk import top_per_row

# Similarity entries (one float32 and one int32 each) a block may hold before top-n pruning:
# 2**24 entries ≈ 128 MB at worst.
BLOCK_ENTRIES = 2**24


def interactions(inputs: RecInputs) -> sp.csr_matrix:
    """Binary users × products: any positive decayed interaction before the cut-off."""
    binary = inputs.history.copy()
    binary.data = (binary.data > 0).astype(np.float32)
    binary.eliminate_zeros()
    return binary.tocsr()


def row_blocks(entries: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) row ranges, each starting a new block once the entries so
    far pass a multiple of `budget`: a block holds under `budget` plus its last row."""
    if len(entries) == 0:
        return []
    block = (np.cumsum(entries) - entries) // max(budget, 1)
    bounds = np.r_[0, np.flatnonzero(np.diff(block)) + 1, len(entries)]
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def dense_product(left: sp.csr_matrix, right: sp.csr_matrix, budget: int = BLOCK_ENTRIES) -> np.ndarray:
    """left @ right as a dense float32 array, a few rows at a time so the sparse intermediate
    never holds more than about `budget` entries."""
    out = np.zeros((left.shape[0], right.shape[1]), dtype=np.float32)
    chunk = max(1, budget // max(right.shape[1], 1))
    for start in range(0, left.shape[0], chunk):
        block = (left[start : start + chunk] @ right).astype(np.float32, copy=False)
        block.toarray(out=out[start : start + chunk])  # written in place: no second dense copy
    return out


@dataclass
class ItemKNN:
    """Item-based kNN on co-occurrence: cosine between products' user columns, each product
    keeping its `neighbors` most similar; score(u, ·) = X[u] @ S."""

    neighbors: int = 100
    name: str = "item_knn"
    similarity: sp.csr_matrix = field(init=False, repr=False)

    @property
    def params(self) -> dict:
        return {"neighbors": self.neighbors}

    def fit(self, inputs: RecInputs) -> ItemKNN:
        self.x = interactions(inputs)
        self.similarity = item_cosine(self.x, self.neighbors)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return dense_product(self.x[rows], self.similarity)


def item_cosine(x: sp.csr_matrix, neighbors: int, budget: int = BLOCK_ENTRIES) -> sp.csr_matrix:
    """Sparse products × products cosine similarity of binary `x`'s columns, no diagonal,
    each row keeping its top `neighbors`. Built a block of products at a time: a block's
    rows of XᵀX are bounded by Σ over their buyers of the buyers' product counts, and blocks
    are cut so that bound stays under `budget` entries before pruning."""
    x = x.tocsr().astype(np.float32)
    n_products = x.shape[1]
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    columns = x.T.tocsr()
    bound = np.minimum(columns @ np.diff(x.indptr).astype(np.float64), n_products)
    pieces = [sp.csr_matrix((0, n_products), dtype=np.float32)]
    for start, stop in row_blocks(bound, budget):
        block = (columns[start:stop] @ x).tocsr()
        products = start + np.repeat(np.arange(stop - start), np.diff(block.indptr))
        block.data[block.indices == products] = 0.0
        block.data = block.data / norms[products] / norms[block.indices]
        block.eliminate_zeros()
        pieces.append(top_per_row(block, neighbors))
    return sp.vstack(pieces, format="csr", dtype=np.float32)


@dataclass
class EASE:
    """Embarrassingly Shallow Autoencoder (Steck, 2019), closed form on the `max_products`
    products the most users touched (all of them if fewer):
    P = (XᵀX + λI)⁻¹,  B = −P / diag(P),  diag(B) = 0,  score(u, ·) = X[u] @ B, zero elsewhere.

    5,000 by default: Online Retail's whole catalog (~4,000 products) still fits, so its
    published EASE numbers are unrestricted, while the Gram matrix stays at 100 MB (float32,
    inverted in place; mirroring its triangle takes two more such buffers for a moment), and a
    fit takes seconds on two cores."""

    l2: float = 500.0
    max_products: int = 5000
    name: str = "ease"

    @property
    def params(self) -> dict:
        return {"l2": self.l2, "max_products": self.max_products}

    def fit(self, inputs: RecInputs) -> EASE:
        x = interactions(inputs)
        self.n_products = x.shape[1]
        self.kept = most_touched(x, self.max_products)
        self.x = x[:, self.kept].tocsr()
        self.weights = ease_weights(self.x, self.l2)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(rows), self.n_products), dtype=np.float32)
        scores[:, self.kept] = self.x[rows] @ self.weights
        return scores


def most_touched(x: sp.csr_matrix, n: int) -> np.ndarray:
    """Positions (ascending) of the `n` products with the most users, among those with any;
    equal counts: the lower position. Products nobody touched would get zero weights anyway."""
    users = np.bincount(x.indices, minlength=x.shape[1])
    ranked = np.argsort(-users, kind="stable")[: min(n, int((users > 0).sum()))]
    return np.sort(ranked)


def ease_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    # XᵀX + λI is symmetric positive definite for λ > 0: LAPACK's Cholesky factorisation and
    # inverse (potrf + potri), in float32 and in place, on one Fortran-ordered N × N buffer.
    # float32 halves the memory; on Online Retail's 3,648 products it took 1.15 s against
    # 2.6 s for scipy.linalg.inv in float64 (a busy machine), every shopper's EASE top 10 was
    # the same and the weights differed by at most 2e-7.
    gram = (x.T @ x).astype(np.float32).toarray(order="F")
    gram[np.diag_indices_from(gram)] += l2
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, info = potrf(gram, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = potri(factor, lower=True, overwrite_c=True)
    if info != 0:  # cannot happen for λ > 0 short of NaNs in the interactions
        raise ValueError(f"EASE: XᵀX + {l2}·I is not positive definite (LAPACK info {info})")
    # potri fills the lower triangle only (the upper still holds XᵀX): mirror it.
    inverse = np.tril(inverse)
    inverse += np.tril(inverse, -1).T
    inverse /= -np.diag(inverse).copy()
    np.fill_diagonal(inverse, 0.0)
    return np.ascontiguousarray(inverse)  # C order: sparse @ dense would copy F order


@dataclass
class ALS:
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky) from the `implicit`
    package: confidence 1 + alpha·x, `factors` dimensions. On every core the process may
    use (`threads` None): implicit's conjugate-gradient step solves each shopper's (and each
    product's) factors on its own from the same shared Gram matrix, so any thread count gives
    the same factors, bit for bit (tests/test_collaborative.py holds it); 2 threads fitted a
    100k × 20k matrix in 8.6-10.9 s against 18.4 s on one. The Gram matrix is numpy's BLAS,
    kept at one thread."""

    factors: int = 64
    alpha: float = 10.0
    regularization: float = 0.05
    iterations: int = 15
    threads: int | None = None
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
                num_threads=self.threads or cores(),
            )
            model.fit(interactions(inputs), show_progress=False)
        self.users, self.items = model.user_factors, model.item_factors
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.users[rows] @ self.items.T

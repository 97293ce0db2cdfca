"""How a generator picks each shopper's top few without a shoppers × catalog matrix.

Plain functions over a block of shoppers (their positions 0..B-1 in the block), each
returning the proposals as two parallel arrays (block positions, product rows):
- `top_entries`: each row's best stored entries of a sparse block (history, co-occurrence);
- `top_cells`: the same over a dense block (co-occurrence on a small, well-filled catalog);
- `from_lists`: the first few of a ranked list shared by a segment (best-sellers, a country's);
- `dense_top`: each row's best of a dense block over a few target products (EASE);
- `pooled_top`: the best of a sparse candidate pool, re-scored exactly (content).
Ties at a cut keep the lowest product rows (or the higher of a tie-break the caller gives),
so the same input gives the same proposals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from recommendations.topk import largest_in_rows, top_in_rows

if TYPE_CHECKING:
    import torch

Proposals = tuple[np.ndarray, np.ndarray]  # (block positions, product rows)

# Vector cells (pairs × dimensions) gathered at once for the exact dot products: 1 MiB of
# float32 a side, so both gathered blocks are still in cache when einsum reads them. With
# 32,768 pairs a chunk (48 MiB a side at 384 dimensions) the gather and the read each went to
# memory: 384-dimension pairs ran 2.2× slower on two threads (docs/recommendations.md).
DOT_CHUNK_CELLS = 262_144


class Bought:
    """What a block of shoppers bought, to drop it from their proposals (`exclude_bought`);
    `purchased` None: nothing is dropped."""

    def __init__(self, purchased: sp.csr_matrix | None, n_products: int):
        self.n_products = n_products
        self.counts: np.ndarray | None = None  # purchases per block position
        self.keys = np.zeros(0, dtype=np.int64)  # position × n_products + product, ascending
        if purchased is not None and purchased.nnz:
            users, products, _ = entries(canonical(purchased))
            self.keys = users * n_products + products
            self.counts = np.diff(purchased.indptr)

    def at(self, users: np.ndarray, products: np.ndarray) -> np.ndarray:
        """Whether each (block position, product) pair was bought."""
        if len(self.keys) == 0:
            return np.zeros(len(users), dtype=bool)
        keys = users * self.n_products + products
        found = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[found] == keys

    def pairs(self, subset: np.ndarray | None = None) -> Proposals:
        """The bought (position, product) pairs; with `subset` (ascending block positions), of
        those shoppers only, positions counted within the subset."""
        users, products = self.keys // max(self.n_products, 1), self.keys % max(self.n_products, 1)
        if subset is None:
            return users, products
        if len(subset) == 0:  # (no shopper of the block has a vector: nothing to index into)
            return nothing()
        at = np.searchsorted(subset, users)
        inside = (at < len(subset)) & (subset[np.minimum(at, len(subset) - 1)] == users)
        return at[inside], products[inside]


def top_entries(
    matrix: sp.csr_matrix, n: int, allowed: np.ndarray, bought: Bought, then: np.ndarray | None = None
) -> Proposals:
    """Each row's `n` largest positive entries among allowed (P bools), unbought products;
    `matrix` canonical (see `canonical`); ties at the cut: the higher `then` (P floats), then
    the lower product row."""
    if n <= 0:
        return nothing()
    users, products, values = entries(matrix)
    keep = (values > 0) & allowed[products]
    users, products, values = users[keep], products[keep], values[keep]
    keep = ~bought.at(users, products)
    users, products, values = users[keep], products[keep], values[keep]
    tie_break = None if then is None else then[products]
    keep = top_in_rows(row_starts(users, matrix.shape[0]), values, n, tie_break)
    return users[keep], products[keep]


def top_cells(matrix: np.ndarray, n: int, allowed: np.ndarray, bought: Bought) -> Proposals:
    """`top_entries` (without `then`) of a dense block: the same proposals as from the
    block's sparse form, an unstored entry being a zero, which is never proposed."""
    import torch

    if n <= 0 or matrix.size == 0:
        return nothing()
    scores = torch.from_numpy(
        np.where((matrix > 0) & allowed[None, :], matrix, -np.inf).astype(np.float32, copy=False)
    )
    users, products = bought.pairs()
    scores[torch.from_numpy(users), torch.from_numpy(products)] = float("-inf")
    keep = largest_in_rows(scores, min(n, matrix.shape[1])) & torch.isfinite(scores)
    users, products = np.nonzero(keep.numpy())
    return users.astype(np.int64), products.astype(np.int64)


def from_lists(lists: list[np.ndarray], segment: np.ndarray, n: int, bought: Bought) -> Proposals:
    """The first `n` unbought products of each block position's segment list (segment -1:
    none). A shopper reads at most n + (their purchases) of it: the work is per shopper, not
    per catalog product."""
    if n <= 0 or not lists:
        return nothing()
    parts = []
    for code in np.unique(segment[segment >= 0]):
        ranked = lists[code]
        users = np.flatnonzero(segment == code)
        extra = bought.counts[users] if bought.counts is not None else np.zeros(len(users), dtype=np.int64)
        lengths = np.minimum(n + extra, len(ranked))
        owner = np.repeat(users, lengths)
        place = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        products = ranked[place]
        keep = ~bought.at(owner, products)
        owner, products = owner[keep], products[keep]
        rank = np.arange(len(owner)) - np.searchsorted(owner, owner)  # place among the kept
        parts.append((owner[rank < n], products[rank < n]))
    return concat(parts)


def dense_top(scores: torch.Tensor, targets: np.ndarray, n: int, bought: Bought) -> Proposals:
    """Each row's `n` best positive scores of a dense block positions × `targets` (product
    rows) block, -inf where not allowed, without what the shopper bought."""
    import torch

    users, products = bought.pairs()
    if len(users):
        position = np.full(bought.n_products, -1, dtype=np.int64)
        position[targets] = np.arange(len(targets))
        at = position[products]
        hit = at >= 0
        scores[torch.from_numpy(users[hit]), torch.from_numpy(at[hit])] = float("-inf")
    if scores.shape[1] == 0:
        return nothing()
    # The module's tie rule (the lowest product row), not torch.topk's order among equal scores.
    keep = largest_in_rows(scores, min(n, scores.shape[1])) & (scores > 0)
    owner, position = np.nonzero(keep.numpy())
    return owner.astype(np.int64), targets[position]


def pooled_top(
    pool: sp.csr_matrix,
    n: int,
    pool_size: int,
    usable: np.ndarray,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
    bought: Bought,
) -> Proposals:
    """Each row's `n` best by `exact(positions, products)` among its `pool_size` largest
    entries of `pool` (canonical), for the block positions where `usable` holds."""
    if n <= 0:
        return nothing()
    users, products, values = entries(pool)
    keep = usable[users]
    users, products, values = users[keep], products[keep], values[keep]
    keep = ~bought.at(users, products)
    users, products, values = users[keep], products[keep], values[keep]
    keep = top_in_rows(row_starts(users, pool.shape[0]), values, pool_size)
    users, products = users[keep], products[keep]
    keep = top_in_rows(row_starts(users, pool.shape[0]), exact(users, products), n)
    return users[keep], products[keep]


def dot_at(left: np.ndarray, left_rows: np.ndarray, right: np.ndarray, right_rows: np.ndarray) -> np.ndarray:
    """left[left_rows[i]] · right[right_rows[i]] for each i, a chunk of pairs at a time.
    Each pair's products are summed by the same einsum kernel whatever the chunk, so the
    chunk's size changes the speed, not the floats."""
    out = np.empty(len(left_rows), dtype=np.float32)
    chunk = max(1, DOT_CHUNK_CELLS // max(left.shape[1], 1))
    for start in range(0, len(left_rows), chunk):
        stop = start + chunk
        out[start:stop] = np.einsum(
            "ij,ij->i", left[left_rows[start:stop]], right[right_rows[start:stop]], dtype=np.float32
        )
    return out


def canonical(matrix: sp.spmatrix) -> sp.csr_matrix:
    """CSR with columns ascending in each row, which the tie rule relies on."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    return matrix


def entries(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of a CSR matrix's stored entries, in storage order."""
    users = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return users, matrix.indices.astype(np.int64), matrix.data


def row_starts(users: np.ndarray, n_users: int) -> np.ndarray:
    """CSR-style row pointers of entries sorted by user."""
    return np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))]


def nothing() -> Proposals:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def concat(parts: list[Proposals]) -> Proposals:
    if not parts:
        return nothing()
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

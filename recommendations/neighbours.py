"""Each product's nearest titles: the content generators' index.

A shopper's vector is the weighted mean of their history's title vectors
(embeddings.users), so their content score for a product is a weighted sum of that
product's similarity to each history item. The products a shopper is closest to are
therefore, nearly always, near neighbours of their own items: the content candidates come
from each history item's top-m neighbours (recommendations.candidates), and only those are
scored exactly. Scanning every shopper against every product instead costs
shoppers × products × dimensions (1M × 100k × 384 is 77 TFLOP); this index costs
products × targets × dimensions once per run, a block of rows at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recommendations.parallel import map_in_threads

# Similarities one block may hold: block rows × targets ≤ this (32 MB of float32).
BLOCK_CELLS = 8_000_000
# Bytes a block holds per cell while it is reduced: the float32 products, a set's own
# columns copied out of them, and topk's working space.
BLOCK_MEMORY = 12
# The fewest rows a block multiplies. MKL's sgemm takes another kernel for 1-3 rows, whose
# last bits differ from the same rows' within a larger block (measured at 6-384
# dimensions); with at least this many, a product's similarities are the same whatever
# block it falls in, so a set's index is the same from its own pass or a shared one.
MIN_BLOCK_ROWS = 16


def nearest_neighbours(
    vectors: np.ndarray, targets: np.ndarray, m: int, cells: int = BLOCK_CELLS
) -> sp.csr_matrix:
    """products × products, row i holding the `m` products among `targets` (bools) whose
    vectors have the highest dot product with vector i, itself included when it is a target
    (its own title is the closest to a shopper who bought only it); the values are the dot
    products. Built `cells // targets` rows at a time: never a products × products matrix."""
    return nearest_neighbours_among(vectors, [targets], m, cells)[0]


def nearest_neighbours_among(
    vectors: np.ndarray,
    target_sets: Sequence[np.ndarray],
    m: int | Sequence[int],
    cells: int = BLOCK_CELLS,
    rows: np.ndarray | None = None,
) -> list[sp.csr_matrix]:
    """`nearest_neighbours` for several target sets from ONE pass over the similarities: each
    block of rows is multiplied once against the union of the sets, and each set takes its top
    `m` (one for all, or one per set) from its own columns of that block. The content
    generator needs two indexes (all recommendable products, and the new ones among them); at
    100k products each pass is ~7.7 TFLOP, minutes on two cores, and the two sets' columns
    are mostly the same. A set's values are those of its own pass, so its top `m` are the
    same: a similarity does not depend on the other columns multiplied with it, nor on the
    other rows of its block once blocks hold MIN_BLOCK_ROWS rows (tested). With `rows`
    (product rows), only those rows are computed and the others are left empty: the ranker's
    training reads only the rows of its sampled shoppers' products."""
    import torch

    n = len(vectors)
    ms = [m] * len(target_sets) if isinstance(m, int) else list(m)
    if len(ms) != len(target_sets):
        raise ValueError(f"{len(ms)} neighbour counts for {len(target_sets)} target sets")
    union = np.zeros(n, dtype=bool)
    for targets in target_sets:
        union |= targets
    columns = np.flatnonzero(union)
    if n == 0 or len(columns) == 0:
        return [sp.csr_matrix((n, n), dtype=np.float32) for _ in target_sets]
    # Per set: its columns' positions within the union (None: the set is the whole union).
    positions = [
        None if targets[columns].all() else np.flatnonzero(targets[columns]) for targets in target_sets
    ]
    sizes = [len(columns) if at is None else len(at) for at in positions]
    ks = [max(0, min(wanted, size)) for wanted, size in zip(ms, sizes, strict=True)]
    if not any(ks):
        return [sp.csr_matrix((n, n), dtype=np.float32) for _ in target_sets]
    right = torch.from_numpy(np.ascontiguousarray(vectors[columns], dtype=np.float32)).T.contiguous()
    computed = np.arange(n) if rows is None else with_fewest_rows(rows, n)
    left = torch.from_numpy(
        np.ascontiguousarray(vectors if rows is None else vectors[computed], dtype=np.float32)
    )
    step = max(MIN_BLOCK_ROWS, cells // len(columns))
    bounds = block_bounds(len(computed), step)
    values = [np.empty((len(computed), k), dtype=np.float32) for k in ks]
    indices = [np.empty((len(computed), k), dtype=np.int64) for k in ks]

    def rows_from(span: tuple[int, int]) -> None:
        start, stop = span
        block = left[start:stop] @ right
        for i, (at, k) in enumerate(zip(positions, ks, strict=True)):
            if k == 0:
                continue
            own = block if at is None else block[:, torch.from_numpy(at)]
            top = torch.topk(own, k, dim=1)
            chosen = top.indices.numpy()
            values[i][start:stop] = top.values.numpy()
            indices[i][start:stop] = columns[chosen if at is None else at[chosen]]

    # The blocks side by side, each on the caller's torch threads (one in the nightly run):
    # every block is the same product of the same shapes as in a serial loop, so the same
    # values, and each writes its own rows. At 100k products one pass was minutes on one
    # core of two while the other waited (the ranker's cut-offs run one at a time there).
    largest = max(stop - start for start, stop in bounds)
    map_in_threads(rows_from, bounds, memory_each=BLOCK_MEMORY * largest * len(columns))
    return [_sorted_rows(v, ix, n, computed) for v, ix in zip(values, indices, strict=True)]


def with_fewest_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """`rows` (of `n`) ascending and unique, with the first rows added up to MIN_BLOCK_ROWS
    in all: a block of fewer would be multiplied another way (other last bits)."""
    return np.union1d(rows, np.arange(min(n, MIN_BLOCK_ROWS)))


def block_bounds(n: int, step: int) -> list[tuple[int, int]]:
    """[start, stop) of `n` rows in blocks of `step`; a last block shorter than
    MIN_BLOCK_ROWS joins the one before it."""
    starts = list(range(0, n, step))
    if len(starts) > 1 and n - starts[-1] < MIN_BLOCK_ROWS:
        starts.pop()
    return list(zip(starts, [*starts[1:], n][: len(starts)], strict=True))


def _sorted_rows(values: np.ndarray, indices: np.ndarray, n: int, rows: np.ndarray) -> sp.csr_matrix:
    """The (value, column) pairs of `rows` (ascending; the others empty) as a canonical n × n
    CSR matrix: columns ascending."""
    k = values.shape[1]
    if k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    order = np.argsort(indices, axis=1, kind="stable")
    per_row = np.zeros(n, dtype=np.int64)
    per_row[rows] = k
    return sp.csr_matrix(
        (
            np.take_along_axis(values, order, axis=1).ravel(),
            np.take_along_axis(indices, order, axis=1).ravel(),
            np.r_[0, np.cumsum(per_row)],
        ),
        shape=(n, n),
    )

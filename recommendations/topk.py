"""Top-K without a users × products matrix, and the per-row top-n of sparse rows.

`top_k_in_blocks`: rows are scored a block at a time; each block's best K are kept (with the
score components at those positions) and the block is dropped, so memory is bounded by
`block_size × products`, whatever the number of rows.

`top_in_rows`, `top_per_row` and `ranks_in_groups` work on ragged rows (a sparse matrix's, or
each shopper's candidates): vectorised over all rows at once, ties broken by column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:  # torch is imported where it is used: loading the definitions stays without it
    import torch

    # score_block(start, stop) -> (scores, explain); explain(top_positions) -> {name: rows × k}
    Explain = Callable[[torch.Tensor], dict[str, torch.Tensor]]
    ScoreBlock = Callable[[int, int], tuple[torch.Tensor, Explain]]


def top_k_in_blocks(
    score_block: ScoreBlock, n_rows: int, n_columns: int, k: int, block_size: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """`score_block(start, stop)` returns ((stop-start) × columns scores, -inf where excluded)
    and a function that, given the block's top positions, returns the score components
    there. Returns (indices, scores, components), each rows × k, best first; a row with
    fewer than k allowed columns is padded with index -1 and score -inf."""
    import torch

    k_eff = min(k, n_columns)
    indices = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    gathered: dict[str, np.ndarray] = {}
    for start in range(0, n_rows, block_size):
        stop = min(start + block_size, n_rows)
        block, explain = score_block(start, stop)
        top = torch.topk(block, k_eff, dim=1, largest=True, sorted=True)
        del block  # free the block before the next one is scored
        values, positions = top.values.numpy(), top.indices.numpy()
        allowed = np.isfinite(values)
        indices[start:stop, :k_eff] = np.where(allowed, positions, -1)
        scores[start:stop, :k_eff] = np.where(allowed, values, -np.inf)
        for name, component in explain(top.indices).items():
            target = gathered.setdefault(name, np.zeros((n_rows, k), dtype=np.float32))
            target[start:stop, :k_eff] = np.where(allowed, component.numpy(), 0.0)
    return indices, scores, gathered


# Cells of one padded matrix in `top_in_rows` (floats): rows are padded to their bucket's width.
PAD_CELLS = 4_000_000


def top_in_rows(indptr: np.ndarray, values: np.ndarray, n: int, then: np.ndarray | None = None) -> np.ndarray:
    """A mask over ragged rows' entries (row r holds entries indptr[r]:indptr[r + 1], in
    ascending column order) keeping each row's `n` largest values; ties at the cut keep the
    higher `then` (one value per entry), then the lowest columns. A sparse row-wise top-n
    without a Python loop per row: rows longer than `n` are grouped by the power of two above
    their length and padded to a matrix (so the padding at most doubles the work) for
    torch.topk, which finds each row's cut."""
    import torch

    lengths = np.diff(indptr)
    if n <= 0:
        return np.zeros(len(values), dtype=bool)
    keep = np.ones(len(values), dtype=bool)  # rows of at most n entries keep them all
    long = np.flatnonzero(lengths > n)
    if len(long) == 0:
        return keep
    bucket = np.ceil(np.log2(lengths[long])).astype(np.int64)
    for size in np.unique(bucket):
        rows = long[bucket == size]
        width = int(lengths[rows].max())
        step = max(1, PAD_CELLS // width)
        offsets = np.arange(width)
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            valid = offsets[None, :] < lengths[part][:, None]
            index = np.where(valid, indptr[part][:, None] + offsets[None, :], 0)
            padded = torch.from_numpy(np.where(valid, values[index], -np.inf))
            key = None if then is None else torch.from_numpy(np.where(valid, then[index], -np.inf))
            chosen = largest_in_rows(padded, n, key)
            keep[index[valid]] = chosen.numpy()[valid]
    return keep


def largest_in_rows(scores: torch.Tensor, n: int, then: torch.Tensor | None = None) -> torch.Tensor:
    """A mask over a matrix (rows × width, n ≤ width) keeping each row's `n` largest values;
    ties at the cut keep the higher `then` (one value per cell), then the lowest columns.
    -inf cells are kept only where a row has fewer than `n` others: callers drop them."""
    import torch

    cut = torch.topk(scores, n, dim=1).values[:, -1:]
    above = scores > cut
    tied = scores == cut
    room = n - above.sum(dim=1, keepdim=True)
    if then is None:
        place = torch.cumsum(tied, dim=1)  # 1, 2, ... along the tied entries
    else:  # tied entries by `then`, highest first (a stable sort keeps columns' order)
        order = torch.sort(then.masked_fill(~tied, -np.inf), dim=1, descending=True, stable=True).indices
        ranks = torch.arange(1, scores.shape[1] + 1).expand_as(order)
        place = torch.empty_like(order).scatter_(1, order, ranks)
    return above | (tied & (place <= room))


def top_per_row(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep each row's `n` largest stored values; ties at the cut keep the lowest columns, so
    the result does not depend on how entries happen to be stored."""
    matrix = matrix.tocsr()
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    keep = top_in_rows(matrix.indptr, matrix.data, n)
    row = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.r_[0, np.cumsum(np.bincount(row[keep], minlength=matrix.shape[0]))]
    return sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


def ranks_in_groups(owner: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1 for each owner's highest value, 2 for the next, ...: pairs grouped by owner (each
    owner's pairs contiguous); ties rank the earlier pair first. One stable sort of a padded
    owners × (largest group) matrix instead of a lexsort of every pair: a shopper's
    candidates are bounded by the generators' limits, so the padding stays small."""
    n = len(owner)
    ranks = np.empty(n, dtype=np.float32)
    if n == 0:
        return ranks
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    lengths = np.diff(np.r_[starts, n])
    group = np.repeat(np.arange(len(starts)), lengths)
    position = np.arange(n) - starts[group]
    padded = np.full((len(starts), int(lengths.max())), np.inf)
    padded[group, position] = -np.asarray(values, dtype=np.float64)
    order = np.argsort(padded, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, order.shape[1] + 1)[None, :], axis=1)
    ranks[:] = rank[group, position]
    return ranks

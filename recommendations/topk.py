"""Top-K over a users × products score matrix that is never materialised whole.

Rows are scored a block at a time; each block's best K are kept (with the score
components at those positions) and the block is dropped, so memory is bounded by
`block_size × products`, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
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

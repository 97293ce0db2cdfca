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

import numpy as np
import scipy.sparse as sp
import torch

# Similarities one block may hold: block rows × targets ≤ this (32 MB of float32).
BLOCK_CELLS = 8_000_000


def nearest_neighbours(
    vectors: np.ndarray, targets: np.ndarray, m: int, cells: int = BLOCK_CELLS
) -> sp.csr_matrix:
    """products × products, row i holding the `m` products among `targets` (bools) whose
    vectors have the highest dot product with vector i, itself included when it is a target
    (its own title is the closest to a shopper who bought only it); the values are the dot
    products. Built `cells // targets` rows at a time: never a products × products matrix."""
    n = len(vectors)
    columns = np.flatnonzero(targets)
    k = min(m, len(columns))
    if n == 0 or k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    right = torch.from_numpy(np.ascontiguousarray(vectors[columns], dtype=np.float32)).T.contiguous()
    left = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    step = max(1, cells // len(columns))
    values = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, step):
        top = torch.topk(left[start : start + step] @ right, k, dim=1)
        values[start : start + step] = top.values.numpy()
        indices[start : start + step] = columns[top.indices.numpy()]
    order = np.argsort(indices, axis=1, kind="stable")  # canonical CSR: columns ascending
    return sp.csr_matrix(
        (
            np.take_along_axis(values, order, axis=1).ravel(),
            np.take_along_axis(indices, order, axis=1).ravel(),
            np.arange(0, n * k + 1, k),
        ),
        shape=(n, n),
    )

"""The products a pick's reason names: "bought with X", "similar to X".

For each pick, among the shopper's strongest history products: the one it co-occurs with
most (`together`) and the one whose title vector is closest (`similar`).

Why shoppers are grouped by shape: the per-shopper loop (a sort, a co-occurrence lookup and a
small matrix product each) cost ~0.5 ms a shopper, 13 % of the user table's work on a million
shoppers. Shoppers with the same number of history anchors and of picks are done as one
stacked product. numpy's stacked matmul makes the same BLAS call per shopper as the
loop's own product of those shapes, so every cosine, and so every anchor, is the loop's
(tests/test_candidates_sparse.py holds them equal).
"""

from __future__ import annotations

import numpy as np

from recommendations.features import sample_at
from recommendations.inputs import RecInputs

ANCHORS = 20  # a shopper's strongest history products that the anchors are chosen from
ANCHOR_CHUNK = 256  # shoppers of one shape done at once (~27 MB of title vectors at k = 50)


def reason_anchors(inputs: RecInputs, rows: np.ndarray, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(together, similar), each shaped as `picks` (block positions × k product rows, -1: no
    pick): the anchor product row per pick, -1 where there is none (no history, or no
    co-occurrence for `together`)."""
    together = np.full(picks.shape, -1, dtype=np.int64)
    similar = np.full(picks.shape, -1, dtype=np.int64)
    history = inputs.history[rows]
    valid = picks >= 0
    shoppers = np.flatnonzero((np.diff(history.indptr) > 0) & valid.any(axis=1))
    owned = _strongest(history, shoppers)
    shape = np.stack([(owned >= 0).sum(axis=1), valid[shoppers].sum(axis=1)], axis=1)
    for n_owned, n_picked in np.unique(shape, axis=0).tolist():
        group = np.flatnonzero((shape[:, 0] == n_owned) & (shape[:, 1] == n_picked))
        for start in range(0, len(group), ANCHOR_CHUNK):
            part = group[start : start + ANCHOR_CHUNK]
            block_rows = shoppers[part]
            at = np.nonzero(valid[block_rows])[1].reshape(len(part), n_picked)  # the picks' places
            chosen = np.take_along_axis(picks[block_rows], at, axis=1)
            anchors = owned[part, :n_owned]
            together_at, similar_at = _best_anchors(inputs, anchors, chosen)
            together[block_rows[:, None], at] = together_at
            similar[block_rows[:, None], at] = similar_at
    return together, similar


def _strongest(history, shoppers: np.ndarray) -> np.ndarray:
    """Each shopper's (at most ANCHORS) strongest history products, strongest first, -1
    padded. numpy's own argsort per shopper: its order among equal weights (a basket's
    products share one) decides which product is named, so it is kept as it was."""
    owned = np.full((len(shoppers), ANCHORS), -1, dtype=np.int64)
    indptr, indices, data = history.indptr, history.indices, history.data
    for place, row in enumerate(shoppers.tolist()):
        start, stop = indptr[row], indptr[row + 1]
        strongest = indices[start:stop][np.argsort(-data[start:stop])[:ANCHORS]]
        owned[place, : len(strongest)] = strongest
    return owned


def _best_anchors(
    inputs: RecInputs, anchors: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For shoppers × anchors and shoppers × picks of one shape: per pick, the anchor with the
    most co-occurrence (-1 if none is positive) and the one with the closest title; a pick is
    never its own anchor. Ties: the stronger anchor (the earlier)."""
    n, n_owned, n_picked = anchors.shape[0], anchors.shape[1], chosen.shape[1]
    owners = np.repeat(anchors, n_picked, axis=1).ravel()
    picked = np.tile(chosen, (1, n_owned)).ravel()
    co = sample_at(inputs.cooccurrence, owners, picked).reshape(n, n_owned, n_picked)
    vectors = inputs.product_matrix
    cos = np.matmul(vectors[anchors], vectors[chosen].transpose(0, 2, 1))
    same = anchors[:, :, None] == chosen[:, None, :]
    co[same], cos[same] = -np.inf, -np.inf
    best_together = np.take_along_axis(anchors, co.argmax(axis=1), axis=1)
    best_similar = np.take_along_axis(anchors, cos.argmax(axis=1), axis=1)
    return np.where(co.max(axis=1) > 0, best_together, -1), best_similar

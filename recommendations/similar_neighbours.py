"""Similar products from each product's nearest titles and co-occurring products only.

Scoring every product against every product (recommendations.similar's dense pass) costs
products² × dimensions, 7.7 TFLOP at 100k products and 384 dimensions, and a large catalog
has already paid it once for the content generator's nearest titles
(recommendations.candidates.title_neighbours). Those are enough, exactly:

For an anchor p, a product q that never co-occurs with p scores w · cos(p, q) (w ≥ 0). If q
is not among p's k + 1 nearest recommendable titles, each of those but p itself (at least k)
has cos ≥ cos(p, q), and co-occurrence only adds (≥ 0): at least k products score ≥ q's. So
p's top k lies within its nearest titles ∪ the products co-occurring with it, and scoring
exactly those pairs (the dot product and the same weighted co-occurrence as the dense pass)
gives the same top k. It holds for every anchor, recommendable or not, and for w = 0 or 1.

What can differ, only among products whose scores are equal: exact ties (duplicate titles,
or w = 0 where every product that never co-occurs with p scores 0) are broken arbitrarily by
the dense pass's torch.topk and by the lowest row here; and the dot products are computed
pair by pair here and by a matrix product there, so the scores agree to float32 rounding
(about 1e-7), which can swap two products whose scores are that close.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommendations.proposals import dot_at, entries
from recommendations.topk import top_in_rows

# Anchors whose candidate pairs are scored at once: at 100k products about 250 pairs each
# (51 titles, up to 200 co-occurring), so a block's pairs and their arrays stay in tens of MB.
PAIR_BLOCK = 4096


def holds_top(titles: sp.csr_matrix, recommendable: np.ndarray, k: int) -> bool:
    """Whether every row of `titles` holds k + 1 nearest recommendable titles (or all of
    them): enough for the top k of similar products (the anchor itself may be one)."""
    need = min(k + 1, int(recommendable.sum()))
    return bool(np.diff(titles.indptr).min(initial=need) >= need)


def top_from_titles(
    vectors: np.ndarray,
    titles: sp.csr_matrix,
    weighted: sp.csr_matrix | None,
    recommendable: np.ndarray,
    k: int,
    w: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each product's top k by w · (vector · vector) + `weighted` co-occurrence, among its
    `titles` (nearest recommendable titles, k + 1 a product: `holds_top`) and the
    recommendable products it co-occurs with, never itself. Returns what
    topk.top_k_in_blocks does: (indices, scores, {content, cooccurrence}), rows × k, best
    first, padded with -1 / -inf / 0; equal scores: the lower row first."""
    if not recommendable[titles.indices].all():
        raise ValueError("similar products need title neighbours among the recommendable products only")
    n = len(vectors)
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    parts = {name: np.zeros((n, k), dtype=np.float32) for name in ("content", "cooccurrence")}
    for start in range(0, n, PAIR_BLOCK):
        stop = min(start + PAIR_BLOCK, n)
        rows, cols, together = _candidates(
            titles[start:stop], None if weighted is None else weighted[start:stop], recommendable, start
        )
        content = dot_at(vectors[start:stop], rows, vectors, cols)  # anchors gathered from the block
        total = w * content + together  # float32, as the dense pass adds co-occurrence onto w · cos
        keep = top_in_rows(np.r_[0, np.cumsum(np.bincount(rows, minlength=stop - start))], total, k)
        rows, cols, content, total = rows[keep], cols[keep], content[keep], total[keep]
        order = np.lexsort((cols, -total, rows))
        rows, cols, content, total = rows[order], cols[order], content[order], total[order]
        first = np.r_[0, np.cumsum(np.bincount(rows, minlength=stop - start))][rows]
        at = (rows + start, np.arange(len(rows)) - first)
        indices[at], scores[at], parts["content"][at] = cols, total, content
        # As the dense pass explains its picks: the score less the content part.
        parts["cooccurrence"][at] = (total - w * content) / (1 - w) if w < 1 else 0.0
    return indices, scores, parts


def _candidates(
    titles: sp.csr_matrix, weighted: sp.csr_matrix | None, recommendable: np.ndarray, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anchors `start`, `start + 1`, ...'s candidates as (local rows, columns, weighted
    co-occurrence), grouped by row with columns ascending: their nearest titles ∪ the
    recommendable products they co-occur with, the anchor itself left out."""
    n = titles.shape[1]
    rows, cols, _ = entries(titles)
    keys = rows * n + cols
    if weighted is not None:
        rows, cols, values = entries(weighted)
        allowed = recommendable[cols]
        together_keys, values = rows[allowed] * n + cols[allowed], values[allowed]
        # Two ascending runs: a stable sort (timsort) merges them in one pass, where np.union1d
        # hashed 3M keys in 0.6 s.
        keys = np.concatenate([keys, together_keys])
        keys.sort(kind="stable")
        distinct = np.ones(len(keys), dtype=bool)
        distinct[1:] = keys[1:] != keys[:-1]
        keys = keys[distinct]
    rows, cols = np.divmod(keys, n)
    other = cols != rows + start
    keys, rows, cols = keys[other], rows[other], cols[other]
    together = np.zeros(len(keys), dtype=np.float32)
    if weighted is not None:
        mine = together_keys % n != together_keys // n + start
        together[np.searchsorted(keys, together_keys[mine])] = values[mine]
    return rows, cols, together

"""Ranking and beyond-accuracy metrics over full-catalog top-K lists.

A ranking is a users × K array of product positions, best first, padded with -1; the
truth is one array of relevant product positions per user (binary relevance). Every
metric is averaged over users with at least one relevant product; the caller removes the
others, since a user with nothing to find says nothing about a ranking.

- precision@k  = hits in the top k / k
- recall@k     = hits in the top k / |relevant|
- hit_rate@k   = 1 if any hit in the top k
- ndcg@k       = Σ rel_i / log2(i + 1) over the top k, over the same for an ideal list
- map@k        = Σ precision@i · rel_i over the top k, / min(|relevant|, k)
"""

from __future__ import annotations

import numpy as np

RANKING_METRICS = ("precision", "recall", "hit_rate", "ndcg", "map")


def hit_matrix(ranked: np.ndarray, truth: list[np.ndarray]) -> np.ndarray:
    """users × K booleans: is the product at each rank relevant to that user?"""
    if len(truth) != ranked.shape[0]:
        raise ValueError(f"{ranked.shape[0]} rankings but {len(truth)} truth sets")
    hits = np.zeros(ranked.shape, dtype=bool)
    for user, relevant in enumerate(truth):
        hits[user] = np.isin(ranked[user], relevant) & (ranked[user] >= 0)
    return hits


def ranking_metrics(ranked: np.ndarray, truth: list[np.ndarray], k: int) -> dict[str, float]:
    """The five ranking metrics at k, averaged over users (all of whom must have a relevant item)."""
    sizes = np.array([len(set(t.tolist())) for t in truth], dtype=np.float64)
    if len(sizes) == 0:
        return dict.fromkeys(RANKING_METRICS, float("nan"))
    if (sizes == 0).any():
        raise ValueError("every evaluated user needs at least one relevant product")
    hits = hit_matrix(ranked[:, :k], truth).astype(np.float64)
    found = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts[: hits.shape[1]]
    ideal_counts = np.minimum(sizes, k).astype(int)
    ideal = np.cumsum(discounts)[ideal_counts - 1]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    average_precision = (precision_at_i * hits).sum(axis=1) / np.minimum(sizes, k)
    return {
        "precision": float(np.mean(found / k)),
        "recall": float(np.mean(found / sizes)),
        "hit_rate": float(np.mean(found > 0)),
        "ndcg": float(np.mean(dcg / ideal)),
        "map": float(np.mean(average_precision)),
    }


def catalog_coverage(ranked: np.ndarray, k: int, catalog_size: int) -> float:
    """Share of the recommendable catalog that appears in at least one user's top k."""
    shown = np.unique(ranked[:, :k])
    return float((shown >= 0).sum() / catalog_size) if catalog_size else float("nan")


def novelty(ranked: np.ndarray, k: int, interaction_share: np.ndarray) -> float:
    """Mean self-information −log2(p) of the recommended products, p = share of training
    users who interacted with the product (smoothed so unseen products are finite)."""
    picks = ranked[:, :k]
    picks = picks[picks >= 0]
    if picks.size == 0:
        return float("nan")
    return float(np.mean(-np.log2(interaction_share[picks])))


def popularity_bias(ranked: np.ndarray, k: int, popularity_percentile: np.ndarray) -> float:
    """Mean popularity percentile of the recommended products: 0.5 is what a random pick
    from the catalog scores, 1.0 means only the very best-sellers are ever shown."""
    picks = ranked[:, :k]
    picks = picks[picks >= 0]
    return float(np.mean(popularity_percentile[picks])) if picks.size else float("nan")


def embedding_diversity(ranked: np.ndarray, k: int, vectors: np.ndarray) -> float:
    """Intra-list diversity: 1 − mean pairwise cosine of each list's products (unit vectors)."""
    values = []
    for row in ranked[:, :k]:
        picks = row[row >= 0]
        if len(picks) < 2:
            continue
        block = vectors[picks]
        similarity = block @ block.T
        n = len(picks)
        values.append(1.0 - (similarity.sum() - np.trace(similarity)) / (n * (n - 1)))
    return float(np.mean(values)) if values else float("nan")


def category_diversity(ranked: np.ndarray, k: int, categories: np.ndarray) -> float:
    """Intra-list diversity: share of product pairs in a list from different top categories.
    NaN when the catalog has no categories (a shop that sends none, like Online Retail)."""
    known = np.array([c is not None and c != "" for c in categories], dtype=bool)
    if not known.any():
        return float("nan")
    codes = np.unique(np.where(known, categories, "").astype(str), return_inverse=True)[1]
    values = []
    for row in ranked[:, :k]:
        picks = row[row >= 0]
        if len(picks) < 2:
            continue
        same = (codes[picks][:, None] == codes[picks][None, :]).sum() - len(picks)
        n = len(picks)
        values.append(1.0 - same / (n * (n - 1)))
    return float(np.mean(values)) if values else float("nan")

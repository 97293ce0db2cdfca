"""Reciprocal rank fusion: one ranking from several, by rank alone (Cormack et al., SIGIR 2009)."""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60  # the paper's constant; LanceDB's RRFReranker uses the same


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Ids by Σ w/(k + rank) over the rankings that hold them (rank counted from 1, weight w
    per ranking, 1 by default), best first.

    Ranks rather than scores, because BM25 and cosine live on unrelated scales and a
    query's BM25 range varies with its words. Scores are divided by the best possible,
    so 1.0 means first in every ranking that found anything. Ties keep the order of first
    appearance (earlier rankings first), so the result is deterministic.
    """
    if k < 1:
        raise ValueError(f"The RRF constant k must be at least 1, got {k}.")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings) or any(w <= 0 for w in weights):
        raise ValueError(f"One positive weight per ranking: {len(rankings)} rankings, weights {weights}.")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    best = sum(w for ranking, w in zip(rankings, weights, strict=True) if ranking) / (k + 1)
    if not best:
        return []
    return sorted(((key, score / best) for key, score in scores.items()), key=lambda item: -item[1])

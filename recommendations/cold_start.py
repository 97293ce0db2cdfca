"""Cold start: what a shopper without history sees.

The candidates are non-personal lists: the shop's best-sellers over 7, 14 or 30 days or all
time, and the shopper's country's over 30 days (topped up from the shop's). The ranker's
training picks the one with the best NDCG@10 for the new shoppers of its newest label
window, so evaluation and the nightly tables make the same, validated choice.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recommendations.candidates import Generators
from recommendations.inputs import purchase_counts

COLD_START_LISTS = ("popular_7d", "popular_14d", "popular_30d", "popular_all", "country_30d")


def cold_start_scores(generators: Generators, name: str, rows: np.ndarray) -> np.ndarray:
    """block × products: the named non-personal list's scores (higher first)."""
    inputs = generators.inputs
    if name == "country_30d":
        country = generators.user_country[rows]
        by_country = (
            generators.country_popularity[np.maximum(country, 0)] if len(generators.country_popularity) else 0
        )
        own = np.where((country >= 0)[:, None], by_country, 0.0)
        return (own + 1e-3 * generators.popular[None, :]).astype(np.float32)
    days = None if name == "popular_all" else int(name.split("_")[1].rstrip("d"))
    scores = purchase_counts(inputs, days)
    scores = scores / max(float(scores.max(initial=0.0)), 1.0) + 1e-3 * generators.popular
    return np.broadcast_to(scores, (len(rows), len(scores)))


def cold_start_list(generators: Generators, name: str, row: int) -> tuple[np.ndarray, np.ndarray]:
    """The named list as shopper `row` sees it (the same for their whole segment): every
    recommendable product, best first (equal scores: the lower product row), and the scores."""
    scores = cold_start_scores(generators, name, np.array([row]))[0]
    products = np.flatnonzero(generators.inputs.recommendable)
    products = products[np.argsort(-scores[products], kind="stable")]
    return products, scores[products]


def top_k(scores: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    # Copies: the scores may be a read-only broadcast view, and masked_fill allocates anyway.
    masked = torch.from_numpy(np.array(scores, dtype=np.float32)).masked_fill(
        ~torch.from_numpy(np.array(allowed, dtype=bool)), float("-inf")
    )
    values, top = torch.topk(masked, min(k, masked.shape[1]), dim=1)
    top = torch.where(torch.isfinite(values), top, torch.full_like(top, -1))
    return top.numpy(), values.numpy()


def _ndcg10(ranked: np.ndarray, truth: list[set]) -> float:
    discounts = 1.0 / np.log2(np.arange(2, 12))
    total = 0.0
    for row, relevant in zip(ranked[:, :10], truth, strict=True):
        hits = np.array([p in relevant for p in row], dtype=float)
        total += (hits @ discounts[: len(hits)]) / discounts[: min(len(relevant), 10)].sum()
    return total / max(len(truth), 1)


def choose_cold_start(generators: Generators, truth: pl.DataFrame) -> dict:
    """The non-personal list with the best NDCG@10 for the window's new shoppers. A list is
    the same for every shopper (or every shopper of a country), so each is ranked once."""
    inputs = generators.inputs
    returning = np.diff(inputs.history.indptr) > 0
    grouped = truth.group_by("user_row").agg("row").sort("user_row")
    rows = grouped["user_row"].to_numpy()
    new = ~returning[rows]
    if not new.any():
        return {"list": "popular_30d", "scores": {}, "new_shoppers": 0}
    rows = rows[new]
    relevant = [set(r) for r, keep in zip(grouped["row"].to_list(), new, strict=True) if keep]
    allowed = inputs.recommendable[None, :]
    countries = generators.user_country[rows]
    scores = {}
    for name in COLD_START_LISTS:
        ranked = np.full((len(rows), 10), -1, dtype=np.int64)
        segments = np.unique(countries) if name == "country_30d" else [None]
        for segment in segments:
            chosen = np.ones(len(rows), dtype=bool) if segment is None else countries == segment
            one = rows[chosen][:1]
            picked = top_k(cold_start_scores(generators, name, one), allowed, 10)[0][0]
            ranked[np.ix_(chosen, np.arange(len(picked)))] = picked  # a catalog may hold fewer than 10
        scores[name] = round(_ndcg10(ranked, relevant), 6)
    best = max(COLD_START_LISTS, key=lambda name: (scores[name], -COLD_START_LISTS.index(name)))
    return {"list": best, "scores": scores, "new_shoppers": int(len(rows))}

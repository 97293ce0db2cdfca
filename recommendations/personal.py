"""Per-shopper top-K from a trained ranker: candidates, features, LightGBM scores, top-K,
the cold-start list for shoppers without history, and the signals behind every pick."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations.candidates import Generators
from recommendations.cold_start import cold_start_scores, top_k
from recommendations.features import FEATURES, FeatureContext
from recommendations.ranker import RankerModel, candidate_blocks, list_order, threads_for


@dataclass
class RankedLists:
    """Parallel to `rows`: product rows best first (-1 padded), the model's scores (the order
    also follows the model's diversity rule, so a later pick can score higher), and, when asked
    for, the picks' features (NaN for cold-start picks)."""

    rows: np.ndarray
    products: np.ndarray  # len(rows) × k
    scores: np.ndarray  # len(rows) × k
    personal: np.ndarray  # len(rows) bools: ranked by the model (else the cold-start list)
    features: np.ndarray | None = None  # len(rows) × k × F


def heuristic_scores(features: np.ndarray) -> np.ndarray:
    """Used only when no booster could be trained (a log too short to label): buy again first,
    by number of baskets, then what the shopper touched, then neighbours, then best-sellers."""

    def column(name: str) -> np.ndarray:
        return np.nan_to_num(features[:, FEATURES.index(name)])

    return (
        10.0 * column("baskets")
        + column("history_weight")
        + column("cooccurrence")
        + 0.01 * np.log1p(column("sold_30d"))
    )


def rank_users(
    model: RankerModel,
    inputs,
    rows: np.ndarray,
    k: int,
    policy: str,
    explain: bool = False,
    generators: Generators | None = None,
    context: FeatureContext | None = None,
) -> RankedLists:
    """Top-k product rows for each of `rows` (sorted, distinct); shoppers without history get
    the cold-start list. `generators` and `context` (fitted on `inputs`) can be passed in to
    rank several policies without fitting them again."""
    if len(rows) > 1 and (np.diff(rows) <= 0).any():
        raise ValueError("rank_users needs sorted, distinct user rows")
    generators = generators or Generators.fit(inputs, model.settings.limits)
    exclude_bought = policy == "new_items"
    booster = model.boosters.get(policy)
    n = len(rows)
    products = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    features = np.full((n, k, len(FEATURES)), np.nan, dtype=np.float32) if explain else None
    personal = np.diff(inputs.history.indptr)[rows] > 0
    position = np.flatnonzero(personal)
    if len(position):
        context = context or FeatureContext.build(inputs)
        ranked_rows = rows[position]
        for block in candidate_blocks(generators, context, rows[position], exclude_bought):
            if booster is not None:
                predicted = booster.predict(
                    block.features, num_threads=threads_for(len(block.features), model.settings)
                )
                info = model.info[policy]
                order_key = list_order(
                    predicted,
                    block.features,
                    block.users,
                    info.get("popularity_penalty", 0.0),
                    info.get("protected_places", 0),
                )
            else:
                predicted = order_key = heuristic_scores(block.features)
            order = np.lexsort((block.products, -order_key, block.users))
            users = block.users[order]
            starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
            rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
            keep = rank < k
            chosen = order[keep]
            slot = position[np.searchsorted(ranked_rows, block.users[chosen])]
            products[slot, rank[keep]] = block.products[chosen]
            scores[slot, rank[keep]] = predicted[chosen]
            if explain:
                features[slot, rank[keep]] = block.features[chosen]
    _fill_cold_start(model, generators, rows, products, scores, exclude_bought)
    return RankedLists(rows, products, scores, personal, features)


def _fill_cold_start(model, generators, rows, products, scores, exclude_bought) -> None:
    """Shoppers without history get the cold-start list; short personal lists are topped up
    from it (never repeating a product)."""
    inputs = generators.inputs
    k = products.shape[1]
    short = np.flatnonzero((products < 0).any(axis=1))
    size = generators.block_users()
    for start in range(0, len(short), size):
        slots = short[start : start + size]
        allowed = np.broadcast_to(inputs.recommendable, (len(slots), inputs.products.height)).copy()
        if exclude_bought:
            bought = inputs.purchased[rows[slots]].tocoo()
            allowed[bought.row, bought.col] = False
        taken = products[slots]
        has = taken >= 0
        allowed[np.repeat(np.arange(len(slots)), k)[has.ravel()], taken[has]] = False
        fill, values = top_k(cold_start_scores(generators, model.cold_start["list"], rows[slots]), allowed, k)
        for i, slot in enumerate(slots):
            free = np.flatnonzero(products[slot] < 0)
            extra = fill[i][fill[i] >= 0][: len(free)]
            products[slot, free[: len(extra)]] = extra
            scores[slot, free[: len(extra)]] = values[i][: len(extra)] - 1e3  # always after personal picks

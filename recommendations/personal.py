"""Per-shopper top-K from a trained ranker: candidates, features, LightGBM scores, top-K,
the cold-start list for shoppers without history, and the signals behind every pick."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations.candidates import Generators
from recommendations.cold_start import cold_start_list
from recommendations.features import FEATURES, FeatureContext
from recommendations.ranker import RankerModel, candidate_blocks, list_order, threads_for
from recommendations.topk import ranks_in_groups


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
    # With the features: the booster's own float64 prediction for each pick (NaN where none),
    # which explaining a pick compares its occluded predictions with (recommendations.reasons).
    predicted: np.ndarray | None = None  # len(rows) × k


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
    generators = generators or Generators.fit(
        inputs, model.settings.limits, model.settings.threads, shoppers=rows
    )
    exclude_bought = policy == "new_items"
    booster = model.boosters.get(policy)
    n = len(rows)
    products = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    features = np.full((n, k, len(FEATURES)), np.nan, dtype=np.float32) if explain else None
    raw = np.full((n, k), np.nan, dtype=np.float64) if explain else None
    personal = np.diff(inputs.history.indptr)[rows] > 0
    position = np.flatnonzero(personal)
    if len(position):
        context = context or FeatureContext.build(inputs)
        exposure = model.exposure_by_row(policy, inputs.product_ids)
        ranked_rows = rows[position]
        for block in candidate_blocks(generators, context, rows[position], exclude_bought):
            if booster is not None:
                predicted = booster.predict(
                    block.features, num_threads=threads_for(len(block.features), model.settings)
                )
                info = model.info[policy]
                order_key = list_order(
                    predicted,
                    exposure[block.products],
                    block.users,
                    info.get("exposure_penalty", 0.0),
                    info.get("protected_places", 0),
                )
            else:
                predicted = order_key = heuristic_scores(block.features)
            # Highest key first; equal keys: the lower product (pairs come products ascending).
            rank = ranks_in_groups(block.users, order_key).astype(np.int64) - 1
            chosen = np.flatnonzero(rank < k)
            slot = position[np.searchsorted(ranked_rows, block.users[chosen])]
            products[slot, rank[chosen]] = block.products[chosen]
            scores[slot, rank[chosen]] = predicted[chosen]
            if explain:
                features[slot, rank[chosen]] = block.features[chosen]
                if booster is not None:
                    raw[slot, rank[chosen]] = predicted[chosen]
    _fill_cold_start(model, generators, rows, products, scores, exclude_bought)
    return RankedLists(rows, products, scores, personal, features, raw)


def _fill_cold_start(model, generators, rows, products, scores, exclude_bought) -> None:
    """Shoppers without history get the cold-start list; short personal lists are topped up
    from it (never repeating a product). The list is the same for every shopper of a segment
    (the shop, or a country): it is ranked once per segment, never per shopper."""
    inputs = generators.inputs
    short = np.flatnonzero((products < 0).any(axis=1))
    name = model.cold_start["list"]
    segment = generators.user_country[rows[short]] if name == "country_30d" else np.zeros(len(short), int)
    for code in np.unique(segment):
        slots = short[segment == code]
        ranked, values = cold_start_list(generators, name, rows[slots[0]])
        bought = inputs.purchased[rows[slots]] if exclude_bought else None
        untouched = (products[slots] < 0).all(axis=1)
        if bought is not None:
            untouched &= np.diff(bought.indptr) == 0
        fill = min(products.shape[1], len(ranked))
        products[slots[untouched], :fill] = ranked[:fill]
        scores[slots[untouched], :fill] = values[:fill] - 1e3  # always after personal picks
        for i in np.flatnonzero(~untouched):  # a short personal list, or purchases to skip
            slot = slots[i]
            skip = products[slot][products[slot] >= 0]
            if bought is not None:
                skip = np.r_[skip, bought.indices[bought.indptr[i] : bought.indptr[i + 1]]]
            free = np.flatnonzero(products[slot] < 0)
            head = np.arange(min(len(ranked), len(free) + len(skip)))
            extra = head[~np.isin(ranked[head], skip)][: len(free)]
            products[slot, free[: len(extra)]] = ranked[extra]
            scores[slot, free[: len(extra)]] = values[extra] - 1e3

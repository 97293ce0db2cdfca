"""Why a product is on a shopper's list, from what drove its ranker score.

The features fall into families (the shopper's own repeat buying, bought-together, similar
titles, shoppers like you, best-sellers, the shopper's country, newness). For each pick the
family whose removal (its features set to missing, which LightGBM treats as unknown) lowers
the score most is the reason: an occlusion attribution, one extra prediction per family
over the picks only, far cheaper than per-row SHAP values. The text then names what the
family saw: the shopper's own cycle, the product it was bought with, the country.
"""

from __future__ import annotations

import numpy as np

from recommendations.features import FEATURES

FAMILIES: dict[str, tuple[str, ...]] = {
    "repeat": (
        "history_weight",
        "baskets",
        "days_since_last",
        "days_since_first",
        "cycle_days",
        "overdue",
    ),
    "together": ("cooccurrence", "cooccurrence_rank"),
    "similar": ("content", "content_rank", "category_affinity", "price_gap"),
    "like_you": ("als", "als_rank", "ease", "ease_rank"),
    "popular": ("sold_7d", "sold_30d", "sold_all", "buyers", "trend", "product_repeat_rate"),
    "country": ("country_popularity",),
    "new": ("product_age_days", "days_since_first_sale"),
}


def driving_family(booster, features: np.ndarray, threads: int = 1) -> np.ndarray:
    """Per row of `features` (picks × FEATURES): the family whose occlusion costs most."""
    if len(features) == 0:
        return np.empty(0, dtype=object)
    if booster is None:
        return _heuristic_family(features)
    base = booster.predict(features, num_threads=threads)
    drops = []
    for columns in FAMILIES.values():
        occluded = features.copy()
        occluded[:, [FEATURES.index(c) for c in columns]] = np.nan
        drops.append(base - booster.predict(occluded, num_threads=threads))
    return np.asarray(list(FAMILIES), dtype=object)[np.argmax(np.stack(drops), axis=0)]


def _heuristic_family(features: np.ndarray) -> np.ndarray:
    """Without a booster (a log too short to label) the score is recommendations.personal's
    heuristic: its largest term is the reason."""

    def column(name: str) -> np.ndarray:
        return np.nan_to_num(features[:, FEATURES.index(name)])

    terms = np.stack(
        [
            10.0 * column("baskets") + column("history_weight"),
            column("cooccurrence"),
            np.maximum(column("content"), 0.0) * 1e-3,
            0.01 * np.log1p(column("sold_30d")) * 1e-3,
        ]
    )
    return np.asarray(["repeat", "together", "similar", "popular"], dtype=object)[terms.argmax(axis=0)]


def _weeks(days: float) -> str:
    if days < 1.5:
        return "day"
    if days < 10:
        return f"{round(days)} days"
    weeks = round(days / 7)
    return "week" if weeks == 1 else f"{weeks} weeks"


def reason_text(
    family: str,
    row: dict[str, float],
    anchor_together: str | None,
    anchor_similar: str | None,
    country: str | None,
    category: str | None,
) -> str:
    """One short sentence for a pick; `row` holds its FEATURES values."""
    bought = row["baskets"] > 0
    if family == "repeat" or (bought and family in ("popular", "like_you")):
        if row["baskets"] >= 2 and np.isfinite(row["cycle_days"]):
            every = _weeks(row["cycle_days"])
            return "you buy this almost every day" if every == "day" else f"you buy this about every {every}"
        if bought:
            return "you bought this before"
        return "you looked at this recently"
    if family == "together" and anchor_together:
        return f"bought with {anchor_together}"
    if family == "new":
        return f"new, similar to {anchor_similar}" if anchor_similar else "new in the shop"
    if family == "similar" and anchor_similar:
        return f"similar to {anchor_similar}"
    if family == "like_you":
        return "shoppers like you bought this"
    if family == "country" and country:
        return f"popular in {country} this month"
    if np.isfinite(row["trend"]) and row["trend"] >= 1.5:
        return "trending this week"
    return f"popular in {category}" if category else "popular right now"

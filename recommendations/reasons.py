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


def driving_family(
    booster, features: np.ndarray, threads: int = 1, predicted: np.ndarray | None = None
) -> np.ndarray:
    """Per row of `features` (picks × FEATURES): the family whose occlusion costs most.
    `predicted`: the booster's predictions for these rows when the caller has them already
    (the ranking made them: predicting a row again gives the same float64)."""
    if len(features) == 0:
        return np.empty(0, dtype=object)
    if booster is None:
        return _heuristic_family(features)
    base = booster.predict(features, num_threads=threads) if predicted is None else predicted
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
    one = np.asarray([family], dtype=object)

    def text(value: str | None) -> np.ndarray:
        return np.asarray([value], dtype=object)

    return str(
        reason_texts(
            one,
            np.asarray([row["baskets"]], dtype=np.float64),
            np.asarray([row["cycle_days"]], dtype=np.float64),
            np.asarray([row["trend"]], dtype=np.float64),
            text(anchor_together),
            text(anchor_similar),
            text(country),
            text(category),
        )[0]
    )


def reason_texts(
    family: np.ndarray,
    baskets: np.ndarray,
    cycle_days: np.ndarray,
    trend: np.ndarray,
    anchor_together: np.ndarray,
    anchor_similar: np.ndarray,
    country: np.ndarray,
    category: np.ndarray,
) -> np.ndarray:
    """A sentence per pick (arrays of one value per pick; the texts may be None). The first
    rule that applies wins, in the order below; the rules are applied to whole arrays, since a
    million shoppers' lists hold tens of millions of picks (one Python call per pick took
    minutes there)."""
    out = np.empty(len(family), dtype=object)
    decided = np.zeros(len(family), dtype=bool)

    def given(texts: np.ndarray) -> np.ndarray:
        return np.fromiter((bool(t) for t in texts), dtype=bool, count=len(texts))

    def put(applies: np.ndarray, sentence) -> None:
        chosen = applies & ~decided
        out[chosen] = sentence(chosen) if callable(sentence) else sentence
        decided[chosen] = True

    bought = baskets > 0
    repeat = (family == "repeat") | (bought & np.isin(family, ("popular", "like_you")))
    cycle = repeat & (baskets >= 2) & np.isfinite(cycle_days)
    every = np.full(len(family), None, dtype=object)
    every[cycle] = [_weeks(days) for days in cycle_days[cycle]]
    put(cycle & (every == "day"), "you buy this almost every day")
    put(cycle, lambda m: "you buy this about every " + every[m])
    put(repeat & bought, "you bought this before")
    put(repeat, "you looked at this recently")
    together, similar = given(anchor_together), given(anchor_similar)
    put((family == "together") & together, lambda m: "bought with " + anchor_together[m])
    put((family == "new") & similar, lambda m: "new, similar to " + anchor_similar[m])
    put(family == "new", "new in the shop")
    put((family == "similar") & similar, lambda m: "similar to " + anchor_similar[m])
    put(family == "like_you", "shoppers like you bought this")
    put((family == "country") & given(country), lambda m: "popular in " + country[m] + " this month")
    put(np.isfinite(trend) & (trend >= 1.5), "trending this week")
    put(given(category), lambda m: "popular in " + category[m])
    put(np.ones(len(family), dtype=bool), "popular right now")
    return out

"""The published per-user table: every known shopper's top-K from the ranker, with a reason
on every row (see recommendations.reasons) and where it came from (`source`)."""

from __future__ import annotations

import numpy as np
import polars as pl

from recommendations.config import RecommendationConfig
from recommendations.features import FEATURES
from recommendations.inputs import RecInputs
from recommendations.personal import rank_users
from recommendations.ranker import RankerModel, threads_for
from recommendations.reasons import driving_family, reason_text


def cap_per_category(indices: np.ndarray, categories: np.ndarray, k: int, cap: int) -> np.ndarray:
    """Keep each row's order but at most `cap` items per category; positions into the candidates."""
    chosen = np.full((indices.shape[0], k), -1, dtype=np.int64)
    for row in range(indices.shape[0]):
        counts: dict = {}
        taken = 0
        for position, product in enumerate(indices[row]):
            if product < 0 or taken == k:
                break
            category = categories[product]
            if counts.get(category, 0) >= cap:
                continue
            counts[category] = counts.get(category, 0) + 1
            chosen[row, taken] = position
            taken += 1
    return chosen


def _anchors(inputs: RecInputs, rows: np.ndarray, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pick: the shopper's history product it co-occurs with most, and the one whose
    title vector is closest (-1 when the shopper has no history)."""
    together = np.full(picks.shape, -1, dtype=np.int64)
    similar = np.full(picks.shape, -1, dtype=np.int64)
    history = inputs.history[rows]
    for i in range(len(rows)):
        owned = history.indices[history.indptr[i] : history.indptr[i + 1]]
        chosen = picks[i]
        valid = chosen >= 0
        if len(owned) == 0 or not valid.any():
            continue
        owned = owned[np.argsort(-history.data[history.indptr[i] : history.indptr[i + 1]])[:20]]
        co = inputs.cooccurrence[owned][:, chosen[valid]].toarray()
        cos = inputs.product_matrix[owned] @ inputs.product_matrix[chosen[valid]].T
        same = owned[:, None] == chosen[valid][None, :]
        co[same], cos[same] = -np.inf, -np.inf
        together[i, valid] = np.where(co.max(axis=0) > 0, owned[co.argmax(axis=0)], -1)
        similar[i, valid] = owned[cos.argmax(axis=0)]
    return together, similar


def ranked_user_table(model: RankerModel, inputs: RecInputs, config: RecommendationConfig) -> pl.DataFrame:
    """One row per (shopper, rank): product, score, reason, source, for every known shopper."""
    policy = "repurchase" if config.allow_repurchase else "new_items"
    rows = np.arange(inputs.users.height, dtype=np.int64)
    wide = config.k if config.max_per_category is None else min(inputs.products.height, 4 * config.k)
    ranked = rank_users(model, inputs, rows, wide, policy, explain=True)
    products, scores, features = ranked.products, ranked.scores, ranked.features
    if config.max_per_category is not None:
        categories = np.asarray(inputs.products["top_category"].fill_null("").to_list(), dtype=object)
        positions = cap_per_category(products, categories, config.k, config.max_per_category)
        valid = positions >= 0
        safe = np.maximum(positions, 0)
        products = np.where(valid, np.take_along_axis(products, safe, axis=1), -1)
        scores = np.where(valid, np.take_along_axis(scores, safe, axis=1), -np.inf)
        features = np.where(valid[:, :, None], np.take_along_axis(features, safe[:, :, None], axis=1), np.nan)
    keep = products >= 0
    user_of = np.repeat(rows, products.shape[1]).reshape(products.shape)
    picked_features = features[keep]
    personal_pick = keep & ranked.personal[:, None] & np.isfinite(features[:, :, 0])
    families = np.full(products.shape, "popular", dtype=object)
    families[personal_pick] = driving_family(
        model.boosters.get(policy),
        features[personal_pick],
        threads_for(int(personal_pick.sum()), model.settings),
    )
    together, similar = _anchors(inputs, rows, np.where(personal_pick, products, -1))
    titles = np.asarray(inputs.products["title"].fill_null("").to_list(), dtype=object)
    categories = np.asarray(inputs.products["top_category"].to_list(), dtype=object)
    countries = np.asarray(inputs.users["country"].to_list(), dtype=object)
    cold_list = model.cold_start["list"]
    reasons, sources = [], []
    for (u, j), pick in np.ndenumerate(products):
        if pick < 0:
            continue
        if personal_pick[u, j]:
            row = dict(zip(FEATURES, features[u, j].tolist(), strict=True))
            reasons.append(
                reason_text(
                    families[u, j],
                    row,
                    titles[together[u, j]] if together[u, j] >= 0 else None,
                    titles[similar[u, j]] if similar[u, j] >= 0 else None,
                    countries[u],
                    categories[pick],
                )
            )
            sources.append("personal")
        elif cold_list == "country_30d" and countries[u] is not None:
            reasons.append(f"popular in {countries[u]} this month")
            sources.append("fallback_segment")
        else:
            reasons.append("popular right now")
            sources.append("fallback_global")
    column = {
        name: picked_features[:, FEATURES.index(name)] for name in ("content", "cooccurrence", "sold_30d")
    }
    user_ids = np.asarray(inputs.users["user_id"].to_list(), dtype=object)
    product_ids = np.asarray(inputs.product_ids, dtype=object)
    ranks = np.broadcast_to(np.arange(1, products.shape[1] + 1), products.shape)
    frame = pl.DataFrame(
        {
            "user_id": user_ids[user_of[keep]],
            "rank": ranks[keep],
            "product_id": product_ids[products[keep]],
            "score": scores[keep].astype(np.float64),
            "content_score": np.nan_to_num(column["content"]).astype(np.float64),
            "graph_score": np.nan_to_num(column["cooccurrence"]).astype(np.float64),
            "popularity_score": np.nan_to_num(column["sold_30d"]).astype(np.float64),
            "reason": reasons,
            "source": sources,
        },
        schema_overrides={"user_id": pl.Utf8, "product_id": pl.Utf8, "reason": pl.Utf8, "rank": pl.Int64},
    )
    # A cap can leave gaps in the ranks: number each list 1..n again.
    return frame.with_columns(rank=pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int64)).sort(
        "user_id", "rank"
    )

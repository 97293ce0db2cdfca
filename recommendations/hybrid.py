"""Per-user top-K and similar products: content + co-occurrence graph + popularity.

    score(u, p) = content_weight    · (user vector · product vector)
                + graph_weight      · graph(u, p) / max_p graph(u, ·)
                + popularity_weight · popularity(p)

graph(u, ·) = history(u, ·) @ cooccurrence: the co-occurrence rows of the products the
shopper touched, weighted by their decayed interaction weight, so recent purchases count
most. Excluded products (delisted, non-merchandise, on the exclusion list, and already
bought when repurchase is off) get -inf before the top-K and so can never appear.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from recommendations.config import RecommendationConfig
from recommendations.inputs import RecInputs
from recommendations.topk import top_k_in_blocks

ANCHORS = 3  # history items a reason may point at


def _dense(matrix: sp.spmatrix) -> torch.Tensor:
    return torch.from_numpy(np.asarray(matrix.todense(), dtype=np.float32))


def _row_normalised(block: torch.Tensor) -> torch.Tensor:
    peak = block.max(dim=1, keepdim=True).values
    return block / torch.where(peak > 0, peak, torch.ones_like(peak))


def personal_rows(inputs: RecInputs) -> np.ndarray:
    """Users with something to personalise from: a vector or any positive history."""
    return inputs.has_vector | (np.diff(inputs.history.indptr) > 0)


def score_users(inputs: RecInputs, config: RecommendationConfig, rows: np.ndarray, k: int):
    """Top-k products for the given user rows; returns (indices, scores, components)."""
    products = torch.from_numpy(inputs.product_matrix)
    users = torch.from_numpy(inputs.user_matrix[rows])
    popularity = torch.from_numpy(inputs.popularity)
    excluded = torch.from_numpy(~inputs.recommendable)
    history = inputs.history[rows]
    bought = inputs.purchased[rows]
    graph_source = history @ inputs.cooccurrence  # sparse users × products

    def block(start: int, stop: int):
        content = users[start:stop] @ products.T
        graph = _row_normalised(_dense(graph_source[start:stop]))
        pop = popularity.expand(stop - start, -1)
        total = config.content_weight * content + config.graph_weight * graph + config.popularity_weight * pop
        total = total.masked_fill(excluded, float("-inf"))
        if not config.allow_repurchase:
            total = total.masked_fill(_dense(bought[start:stop]) > 0, float("-inf"))
        return total, {"content": content, "graph": graph, "popularity": pop}

    return top_k_in_blocks(block, len(rows), inputs.product_matrix.shape[0], k, config.block_size)


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


def _anchors(history: sp.csr_matrix) -> np.ndarray:
    """Each user's top history products by weight (row × ANCHORS, -1 padded)."""
    lengths = np.diff(history.indptr)
    owners = np.repeat(np.arange(history.shape[0]), lengths)
    order = np.lexsort((-history.data, owners))
    rank = np.arange(len(order)) - np.repeat(history.indptr[:-1], lengths)
    anchors = np.full((history.shape[0], ANCHORS), -1, dtype=np.int64)
    keep = rank < ANCHORS
    anchors[owners[order][keep], rank[keep]] = history.indices[order][keep]
    return anchors


def _explain(
    inputs: RecInputs,
    rows: np.ndarray,
    picks: np.ndarray,
    parts: dict[str, np.ndarray],
    config: RecommendationConfig,
) -> np.ndarray:
    """A short reason per pick, from its largest weighted score component."""
    titles = np.asarray(inputs.products["title"].fill_null("").to_list(), dtype=object)
    categories = np.asarray(inputs.products["top_category"].to_list(), dtype=object)
    weighted = np.stack(
        [
            config.content_weight * parts["content"],
            config.graph_weight * parts["graph"],
            config.popularity_weight * parts["popularity"],
        ]
    )
    dominant = weighted.argmax(axis=0)
    anchors = _anchors(inputs.history[rows])
    safe_picks, safe_anchors = np.maximum(picks, 0), np.maximum(anchors, 0)
    # Content: the anchor most similar to the pick. Graph: the anchor it co-occurs with most.
    cosine = np.einsum("uad,ukd->uak", inputs.product_matrix[safe_anchors], inputs.product_matrix[safe_picks])
    together = np.asarray(
        inputs.cooccurrence[
            np.repeat(safe_anchors, picks.shape[1], axis=1).ravel(), np.tile(safe_picks, (1, ANCHORS)).ravel()
        ]
    ).reshape(len(rows), ANCHORS, picks.shape[1])
    cosine[np.broadcast_to((anchors < 0)[:, :, None], cosine.shape)] = -np.inf
    together[np.broadcast_to((anchors < 0)[:, :, None], together.shape)] = -np.inf
    by_content = np.take_along_axis(safe_anchors, cosine.argmax(axis=1), axis=1)
    by_graph = np.take_along_axis(safe_anchors, together.argmax(axis=1), axis=1)
    reasons = np.empty(picks.shape, dtype=object)
    no_anchor = anchors[:, 0] < 0
    for (u, j), kind in np.ndenumerate(dominant):
        if picks[u, j] < 0:
            reasons[u, j] = None
        elif kind == 1 and not no_anchor[u]:
            reasons[u, j] = f"bought with {titles[by_graph[u, j]]}"
        elif kind == 0 and not no_anchor[u]:
            reasons[u, j] = f"similar to {titles[by_content[u, j]]}"
        else:
            category = categories[picks[u, j]]
            reasons[u, j] = f"popular in {category}" if category else "popular right now"
    return reasons


def user_recommendations(
    inputs: RecInputs, config: RecommendationConfig, explain: bool = True
) -> pl.DataFrame:
    """The personal lists (source 'personal') of every user with history."""
    rows = np.flatnonzero(personal_rows(inputs))
    k = config.k
    wide = k if config.max_per_category is None else min(inputs.product_matrix.shape[0], 4 * k)
    indices, scores, parts = score_users(inputs, config, rows, wide)
    if config.max_per_category is not None:
        categories = np.asarray(inputs.products["top_category"].fill_null("").to_list(), dtype=object)
        positions = cap_per_category(indices, categories, k, config.max_per_category)
        valid = positions >= 0
        safe = np.maximum(positions, 0)
        indices = np.where(valid, np.take_along_axis(indices, safe, axis=1), -1)
        scores = np.where(valid, np.take_along_axis(scores, safe, axis=1), -np.inf)
        parts = {n: np.where(valid, np.take_along_axis(v, safe, axis=1), 0.0) for n, v in parts.items()}
    reasons = _explain(inputs, rows, indices, parts, config) if explain else np.full(indices.shape, None)
    user_ids = np.asarray(inputs.users["user_id"].to_list(), dtype=object)[rows]
    product_ids = np.asarray(inputs.product_ids, dtype=object)
    keep = indices >= 0
    return pl.DataFrame(
        {
            "user_id": np.repeat(user_ids, indices.shape[1])[keep.ravel()],
            "rank": np.tile(np.arange(1, indices.shape[1] + 1), len(rows))[keep.ravel()],
            "product_id": product_ids[np.maximum(indices, 0)][keep],
            "score": scores[keep].astype(np.float64),
            "content_score": parts["content"][keep].astype(np.float64),
            "graph_score": parts["graph"][keep].astype(np.float64),
            "popularity_score": parts["popularity"][keep].astype(np.float64),
            "reason": reasons[keep],
        },
        schema_overrides={"user_id": pl.Utf8, "product_id": pl.Utf8, "reason": pl.Utf8, "rank": pl.Int64},
    ).with_columns(source=pl.lit("personal"))


def similar_products(inputs: RecInputs, config: RecommendationConfig) -> pl.DataFrame:
    """Per product: content similarity blended with co-occurrence; content alone for products
    nobody has bought or viewed with anything yet (new products)."""
    products = torch.from_numpy(inputs.product_matrix)
    excluded = torch.from_numpy(~inputs.recommendable)
    cooccurrence = inputs.cooccurrence
    n = inputs.product_matrix.shape[0]
    w = config.similar_content_weight

    def block(start: int, stop: int):
        content = products[start:stop] @ products.T
        together = _row_normalised(_dense(cooccurrence[start:stop]))
        total = (w * content + (1 - w) * together).masked_fill(excluded, float("-inf"))
        own = torch.arange(start, stop)
        total[own - start, own] = float("-inf")  # never similar to itself
        return total, {"content": content, "cooccurrence": together}

    indices, scores, parts = top_k_in_blocks(block, n, n, config.k, config.block_size)
    titles = np.asarray(inputs.products["title"].fill_null("").to_list(), dtype=object)
    product_ids = np.asarray(inputs.product_ids, dtype=object)
    has_cooccurrence = np.diff(cooccurrence.indptr) > 0
    keep = indices >= 0
    owner = np.repeat(np.arange(n), indices.shape[1])[keep.ravel()]
    picked = indices[keep]
    by_cooccurrence = (1 - w) * parts["cooccurrence"][keep] > w * parts["content"][keep]
    reasons = np.where(
        by_cooccurrence,
        np.char.add("often bought with ", titles[owner].astype(str)),
        np.char.add("similar to ", titles[owner].astype(str)),
    )
    return pl.DataFrame(
        {
            "product_id": product_ids[owner],
            "rank": np.tile(np.arange(1, indices.shape[1] + 1), n)[keep.ravel()],
            "similar_product_id": product_ids[picked],
            "score": scores[keep].astype(np.float64),
            "content_score": parts["content"][keep].astype(np.float64),
            "cooccurrence_score": parts["cooccurrence"][keep].astype(np.float64),
            "reason": reasons.astype(object),
            "source": np.where(has_cooccurrence[owner], "content+cooccurrence", "content").astype(object),
        },
        schema_overrides={
            "product_id": pl.Utf8,
            "similar_product_id": pl.Utf8,
            "reason": pl.Utf8,
            "source": pl.Utf8,
            "rank": pl.Int64,
        },
    )

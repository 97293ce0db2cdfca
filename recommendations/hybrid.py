"""Per-user top-K and similar products: content + co-occurrence graph + popularity.

    score(u, p) = content_weight    · (user vector · product vector)
                + graph_weight      · graph(u, p) / max_p graph(u, ·)
                + popularity_weight · popularity(p)
                + repurchase_weight · history(u, p) / max_p history(u, ·)   (repurchase allowed)

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


def _add_sparse(total: torch.Tensor, block: sp.csr_matrix, weight: float) -> None:
    """total += weight · block / (block's row maximum), touching only the non-zeros."""
    coo = block.tocoo()
    if coo.nnz == 0 or weight == 0:
        return
    peak = np.zeros(block.shape[0], dtype=np.float32)
    np.maximum.at(peak, coo.row, coo.data)
    values = weight * coo.data / np.where(peak[coo.row] > 0, peak[coo.row], 1.0)
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    total.index_put_((rows, cols), torch.from_numpy(values.astype(np.float32)), accumulate=True)


def _exclude_pairs(total: torch.Tensor, block: sp.csr_matrix) -> None:
    coo = block.tocoo()
    if coo.nnz:
        rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
        total.index_put_((rows, cols), torch.tensor(float("-inf")))


def _bias(popularity: np.ndarray, weight: float, recommendable: np.ndarray) -> torch.Tensor:
    """weight · popularity, and -inf where a product may never be shown: one row added to
    every block by the matmul itself (addmm), so masking costs no extra pass."""
    bias = weight * torch.from_numpy(popularity.astype(np.float32))
    return bias.masked_fill(torch.from_numpy(~recommendable), float("-inf")).unsqueeze(0)


def personal_rows(inputs: RecInputs) -> np.ndarray:
    """Users with something to personalise from: a vector or any positive history."""
    return inputs.has_vector | (np.diff(inputs.history.indptr) > 0)


def score_users(inputs: RecInputs, config: RecommendationConfig, rows: np.ndarray, k: int):
    """Top-k products for the given user rows; returns (indices, scores, components)."""
    products = torch.from_numpy(inputs.product_matrix)
    users = torch.from_numpy(inputs.user_matrix[rows])
    popularity = torch.from_numpy(inputs.popularity.astype(np.float32))
    bias = _bias(inputs.popularity, config.popularity_weight, inputs.recommendable)
    graph_source = inputs.history[rows] @ inputs.cooccurrence if config.graph_weight else None
    bought = inputs.purchased[rows]
    own_history = inputs.history[rows]
    a, b, g = config.content_weight, config.graph_weight, config.popularity_weight
    r = config.repurchase_weight if config.allow_repurchase else 0.0

    def block(start: int, stop: int):
        user_block = users[start:stop]
        total = torch.addmm(bias, user_block, products.T, alpha=a)  # a·content + g·pop, masked
        again = None
        if r:
            again = torch.zeros_like(total)
            _add_sparse(again, own_history[start:stop], 1.0)
            total.add_(again, alpha=r)
        if graph_source is not None:
            _add_sparse(total, graph_source[start:stop], b)
        if not config.allow_repurchase:
            _exclude_pairs(total, bought[start:stop])

        def explain(top: torch.Tensor) -> dict[str, torch.Tensor]:
            # Recomputed for the k picks only, never for the whole block.
            content = torch.einsum("ud,ukd->uk", user_block, products[top])
            pop = popularity[top]
            repurchase = torch.gather(again, 1, top) if again is not None else torch.zeros_like(content)
            picked = torch.gather(total, 1, top)
            graph = (picked - a * content - g * pop - r * repurchase) / b if b else torch.zeros_like(content)
            return {
                "content": content,
                "graph": torch.nan_to_num(graph, nan=0.0, neginf=0.0),
                "popularity": pop,
                "repurchase": repurchase,
            }

        return total, explain

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
    if picks.size == 0:
        return np.empty(picks.shape, dtype=object)
    titles = np.asarray(inputs.products["title"].fill_null("").to_list(), dtype=object)
    categories = np.asarray(inputs.products["top_category"].to_list(), dtype=object)
    weighted = np.stack(
        [
            config.content_weight * parts["content"],
            config.graph_weight * parts["graph"],
            config.popularity_weight * parts["popularity"],
            config.repurchase_weight * parts["repurchase"],
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
        elif kind == 3 or picks[u, j] in anchors[u]:
            reasons[u, j] = "again: from your recent history"
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
    parts = {
        n: parts.get(n, np.zeros(indices.shape, np.float32))
        for n in ("content", "graph", "popularity", "repurchase")
    }
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
    bias = _bias(np.zeros(len(inputs.recommendable), dtype=np.float32), 0.0, inputs.recommendable)
    cooccurrence = inputs.cooccurrence
    n = inputs.product_matrix.shape[0]
    w = config.similar_content_weight

    def block(start: int, stop: int):
        anchor = products[start:stop]
        total = torch.addmm(bias, anchor, products.T, alpha=w)
        _add_sparse(total, cooccurrence[start:stop], 1 - w)
        own = torch.arange(start, stop)
        total[own - start, own] = float("-inf")  # never similar to itself

        def explain(top: torch.Tensor) -> dict[str, torch.Tensor]:
            content = torch.einsum("ud,ukd->uk", anchor, products[top])
            together = (torch.gather(total, 1, top) - w * content) / (1 - w) if w < 1 else content * 0
            return {"content": content, "cooccurrence": torch.nan_to_num(together, nan=0.0, neginf=0.0)}

        return total, explain

    indices, scores, parts = top_k_in_blocks(block, n, n, config.k, config.block_size)
    parts = {
        name: parts.get(name, np.zeros(indices.shape, np.float32)) for name in ("content", "cooccurrence")
    }
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

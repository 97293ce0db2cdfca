"""Similar products: title-vector similarity blended with co-occurrence in baskets and sessions.

    score(p, q) = similar_content_weight · (vector p · vector q)
                + (1 − similar_content_weight) · cooccurrence(p, q) / (p's largest cooccurrence)

Products nobody has bought or viewed with anything yet (new products) are similar by content
alone. Excluded products (delisted, non-merchandise, on the exclusion list) get -inf before
the top-K and so can never appear; a product is never similar to itself.

On a small catalog every product is scored against every product, a block of anchors at a
time. On a large one the products' nearest titles are already computed for the content
generator (recommendations.candidates.title_neighbours); with k + 1 of them a product, only
those and the co-occurring products are scored (recommendations.similar_neighbours): the
same lists without a second products × products pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import scipy.sparse as sp

from recommendations.config import RecommendationConfig
from recommendations.inputs import RecInputs
from recommendations.similar_neighbours import holds_top, top_from_titles
from recommendations.topk import top_k_in_blocks

if TYPE_CHECKING:
    import torch


def weighted_cooccurrence(cooccurrence: sp.csr_matrix, weight: float) -> sp.csr_matrix | None:
    """weight · cooccurrence / (its row's maximum): what each pair adds to a similar-product
    score (None when nothing does)."""
    if cooccurrence.nnz == 0 or weight == 0:
        return None
    lengths = np.diff(cooccurrence.indptr)
    filled = lengths > 0
    peak = np.zeros(cooccurrence.shape[0], dtype=np.float32)
    peak[filled] = np.maximum.reduceat(cooccurrence.data, cooccurrence.indptr[:-1][filled])
    values = weight * cooccurrence.data / np.repeat(np.where(peak > 0, peak, 1.0), lengths)
    return sp.csr_matrix(
        (values.astype(np.float32), cooccurrence.indices, cooccurrence.indptr), shape=cooccurrence.shape
    )


def _add_sparse(total: torch.Tensor, block: sp.csr_matrix | None) -> None:
    """total += block, touching only the non-zeros."""
    import torch

    if block is None or block.nnz == 0:
        return
    coo = block.tocoo()
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    total.index_put_((rows, cols), torch.from_numpy(coo.data), accumulate=True)


def _bias(popularity: np.ndarray, weight: float, recommendable: np.ndarray) -> torch.Tensor:
    """weight · popularity, and -inf where a product may never be shown: one row added to
    every block by the matmul itself (addmm), so masking costs no extra pass."""
    import torch

    bias = weight * torch.from_numpy(popularity.astype(np.float32))
    return bias.masked_fill(torch.from_numpy(~recommendable), float("-inf")).unsqueeze(0)


def _dense_top(
    inputs: RecInputs, weighted: sp.csr_matrix | None, w: float, k: int, block_size: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Every product scored against every product, a block of anchors at a time."""
    import torch

    products = torch.from_numpy(inputs.product_matrix)
    bias = _bias(np.zeros(len(inputs.recommendable), dtype=np.float32), 0.0, inputs.recommendable)
    n = inputs.product_matrix.shape[0]

    def block(start: int, stop: int):
        anchor = products[start:stop]
        total = torch.addmm(bias, anchor, products.T, alpha=w)
        _add_sparse(total, None if weighted is None else weighted[start:stop])
        own = torch.arange(start, stop)
        total[own - start, own] = float("-inf")  # never similar to itself

        def explain(top: torch.Tensor) -> dict[str, torch.Tensor]:
            content = torch.einsum("ud,ukd->uk", anchor, products[top])
            together = (torch.gather(total, 1, top) - w * content) / (1 - w) if w < 1 else content * 0
            return {"content": content, "cooccurrence": torch.nan_to_num(together, nan=0.0, neginf=0.0)}

        return total, explain

    return top_k_in_blocks(block, n, n, k, block_size)


def similar_products(
    inputs: RecInputs, config: RecommendationConfig, titles: sp.csr_matrix | None = None
) -> pl.DataFrame:
    """Per product: content similarity blended with co-occurrence; content alone for products
    nobody has bought or viewed with anything yet (new products). `titles`: each product's
    nearest recommendable titles when computed already (candidates.title_neighbours); used
    when they hold k + 1 a product, else every pair is scored."""
    cooccurrence = inputs.cooccurrence
    n = inputs.product_matrix.shape[0]
    w = config.similar_content_weight
    weighted = weighted_cooccurrence(cooccurrence, 1 - w)
    if titles is not None and holds_top(titles, inputs.recommendable, config.k):
        indices, scores, parts = top_from_titles(
            inputs.product_matrix, titles, weighted, inputs.recommendable, config.k, w
        )
    else:
        indices, scores, parts = _dense_top(inputs, weighted, w, config.k, config.block_size)
    parts = {
        name: parts.get(name, np.zeros(indices.shape, np.float32)) for name in ("content", "cooccurrence")
    }
    # Built in polars (Arrow strings), not numpy: at 100k products the 5M reasons as numpy
    # fixed-width unicode (4 bytes a character, padded to the longest) and then Python objects
    # took gigabytes at once, beside a million shoppers' lists.
    keep = indices >= 0
    owner = np.repeat(np.arange(n), indices.shape[1])[keep.ravel()]
    picked = indices[keep]
    product_ids = pl.Series(inputs.product_ids, dtype=pl.Utf8)
    anchor_title = inputs.products["title"].cast(pl.Utf8).fill_null("").gather(owner)
    by_cooccurrence = (1 - w) * parts["cooccurrence"][keep] > w * parts["content"][keep]
    has_cooccurrence = (np.diff(cooccurrence.indptr) > 0)[owner]
    return pl.DataFrame(
        {
            "product_id": product_ids.gather(owner),
            "rank": np.tile(np.arange(1, indices.shape[1] + 1), n)[keep.ravel()],
            "similar_product_id": product_ids.gather(picked),
            "score": scores[keep].astype(np.float64),
            "content_score": parts["content"][keep].astype(np.float64),
            "cooccurrence_score": parts["cooccurrence"][keep].astype(np.float64),
            "reason": anchor_title,
            "source": has_cooccurrence,
        },
        schema_overrides={"rank": pl.Int64},
    ).with_columns(
        reason=pl.when(pl.Series(by_cooccurrence))
        .then(pl.lit("often bought with ") + pl.col("reason"))
        .otherwise(pl.lit("similar to ") + pl.col("reason")),
        source=pl.when(pl.col("source")).then(pl.lit("content+cooccurrence")).otherwise(pl.lit("content")),
    )

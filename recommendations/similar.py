"""Similar products: title-vector similarity blended with co-occurrence in baskets and sessions.

    score(p, q) = similar_content_weight · (vector p · vector q)
                + (1 − similar_content_weight) · cooccurrence(p, q)

Products nobody has bought or viewed with anything yet (new products) are similar by content
alone. Excluded products (delisted, non-merchandise, on the exclusion list) get -inf before
the top-K and so can never appear; a product is never similar to itself.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from recommendations.config import RecommendationConfig
from recommendations.inputs import RecInputs
from recommendations.topk import top_k_in_blocks


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


def _bias(popularity: np.ndarray, weight: float, recommendable: np.ndarray) -> torch.Tensor:
    """weight · popularity, and -inf where a product may never be shown: one row added to
    every block by the matmul itself (addmm), so masking costs no extra pass."""
    bias = weight * torch.from_numpy(popularity.astype(np.float32))
    return bias.masked_fill(torch.from_numpy(~recommendable), float("-inf")).unsqueeze(0)


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

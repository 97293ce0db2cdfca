"""The nightly recommendation tables, assembled from the signals and scorers.

On a large catalog the products' nearest titles are computed once here and handed to both
users of them: the content generator of the per-user lists (its indexes over recommendable
and new products) and similar products (each a products × products pass on its own, 7.7
TFLOP at 100k products and 384 dimensions).

The per-user table is built last, when the other tables are done: at a million shoppers it
is the largest thing the step holds, and similar products' own pass (1-1.6 GiB at 100k products)
then never runs on top of it. The nightly run has it written to disk block by block
(`spill`) and reads it back once the inputs are let go (assets/recommendations.py).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recommendations.candidates import title_neighbours, torch_threads
from recommendations.config import RecommendationConfig
from recommendations.inputs import RecInputs
from recommendations.popular import popular_tables
from recommendations.ranker import RankerModel
from recommendations.similar import similar_products
from recommendations.user_lists import ranked_user_table, write_ranked_user_table


def recommendation_tables(
    inputs: RecInputs, config: RecommendationConfig, model: RankerModel, spill: Path | None = None
) -> dict[str, pl.DataFrame]:
    """The four published tables. With `spill` (a folder), the per-user table is written there
    (user_lists.write_ranked_user_table) and left out of the dict: `user_lists.read_user_table`
    reads it back."""
    recommendable = set(inputs.products.filter(pl.Series(inputs.recommendable))["product_id"].to_list())
    # With the generators' torch threads, as when Generators.fit computed them itself: the
    # same blocks, threads and so the same values. None on a small catalog.
    with torch_threads(model.settings.threads):
        titles = title_neighbours(inputs, model.settings.limits, config.k)
    similar = similar_products(inputs, config, None if titles is None else titles.recommendable)
    popular = popular_tables(
        inputs.purchases,
        recommendable,
        inputs.as_of,
        config.windows_days,
        config.k,
        config.trending_min_count,
    )
    tables = {
        "similar_products": similar,
        "popular_products": popular,
        "products": inputs.products.select("product_id", "title", "category_path", "price"),
    }
    if spill is not None:
        write_ranked_user_table(model, inputs, config, spill, titles=titles)
        return tables
    return {"user_recommendations": ranked_user_table(model, inputs, config, titles=titles), **tables}

"""The nightly recommendation tables, assembled from the signals and scorers.

On a large catalog the products' nearest titles are computed once here and handed to both
users of them: the content generator of the per-user lists and similar products (each a
products × products pass on its own, 7.7 TFLOP at 100k products and 384 dimensions).
"""

from __future__ import annotations

import polars as pl

from recommendations.candidates import title_neighbours, torch_threads
from recommendations.config import RecommendationConfig
from recommendations.inputs import RecInputs
from recommendations.popular import popular_tables
from recommendations.ranker import RankerModel
from recommendations.similar import similar_products
from recommendations.user_lists import ranked_user_table


def recommendation_tables(
    inputs: RecInputs, config: RecommendationConfig, model: RankerModel
) -> dict[str, pl.DataFrame]:
    recommendable = set(inputs.products.filter(pl.Series(inputs.recommendable))["product_id"].to_list())
    # With the generators' torch threads, as when Generators.fit computed them itself: the
    # same blocks, threads and so the same values. None on a small catalog.
    with torch_threads(model.settings.threads):
        titles = title_neighbours(inputs, model.settings.limits, config.k)
    return {
        "user_recommendations": ranked_user_table(model, inputs, config, titles=titles),
        "similar_products": similar_products(inputs, config, titles),
        "popular_products": popular_tables(
            inputs.purchases,
            recommendable,
            inputs.as_of,
            config.windows_days,
            config.k,
            config.trending_min_count,
        ),
        "products": inputs.products.select("product_id", "title", "category_path", "price"),
    }

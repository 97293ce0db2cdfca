"""The nightly recommendation tables, assembled from the signals and scorers."""

from __future__ import annotations

import polars as pl

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
    return {
        "user_recommendations": ranked_user_table(model, inputs, config),
        "similar_products": similar_products(inputs, config),
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

"""The nightly recommendation tables, assembled from the signals and scorers."""

from __future__ import annotations

import numpy as np
import polars as pl

from recommendations.config import RecommendationConfig
from recommendations.hybrid import personal_rows, similar_products, user_recommendations
from recommendations.inputs import RecInputs
from recommendations.popular import popular_tables


def _global_ranking(inputs: RecInputs) -> pl.DataFrame:
    ranked = inputs.products.select("product_id", "row").with_columns(
        score=pl.Series(inputs.popularity[inputs.products["row"].to_numpy()].astype(np.float64)),
        recommendable=pl.Series(inputs.recommendable),
    )
    return ranked.filter(pl.col("recommendable") & (pl.col("score") > 0)).sort(
        ["score", "product_id"], descending=[True, False]
    )


def fallback_recommendations(inputs: RecInputs, config: RecommendationConfig) -> pl.DataFrame:
    """Cold start: shoppers with no usable history get what sells in their country (decayed
    purchases), topped up from the whole shop's list; no country → the whole shop's list."""
    cold = inputs.users.filter(pl.Series(~personal_rows(inputs))).select("user_id", "country")
    overall = _global_ranking(inputs).head(config.k).select("product_id", "score")
    recommendable = set(inputs.products.filter(pl.Series(inputs.recommendable))["product_id"].to_list())
    age_days = (pl.lit(inputs.as_of) - pl.col("occurred_at")).dt.total_seconds() / 86_400.0
    by_country = (
        inputs.purchases.filter(
            pl.col("country").is_not_null() & pl.col("product_id").is_in(list(recommendable))
        )
        .with_columns(w=0.5 ** (age_days / config.popularity_half_life_days))
        .group_by("country", "product_id")
        .agg(score=pl.col("w").sum())
        .sort(["country", "score", "product_id"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("country"))
        .filter(pl.col("rank") <= config.k)
    )
    scale = by_country.group_by("country").agg(peak=pl.col("score").max())
    segment_lists = (
        by_country.join(scale, on="country")
        .with_columns(
            score=pl.col("score") / pl.col("peak"),
            source=pl.lit("fallback_segment"),
            reason=pl.format("popular in {}", "country"),
        )
        .select("country", "product_id", "score", "source", "reason")
    )
    global_list = overall.with_columns(source=pl.lit("fallback_global"), reason=pl.lit("popular right now"))
    with_country = cold.join(segment_lists, on="country", how="inner")
    topped_up = cold.join(global_list, how="cross").join(
        with_country.select("user_id", "product_id"), on=["user_id", "product_id"], how="anti"
    )
    combined = pl.concat(
        [
            with_country.select("user_id", "product_id", "score", "source", "reason").with_columns(
                tier=pl.lit(0)
            ),
            topped_up.select("user_id", "product_id", "score", "source", "reason").with_columns(
                tier=pl.lit(1)
            ),
        ]
    )
    ranked = (
        combined.sort(["user_id", "tier", "score", "product_id"], descending=[False, False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int64))
        .filter(pl.col("rank") <= config.k)
    )
    return ranked.select(
        "user_id",
        "rank",
        "product_id",
        "score",
        content_score=pl.lit(0.0),
        graph_score=pl.lit(0.0),
        popularity_score=pl.col("score"),
        reason="reason",
        source="source",
    )


def recommendation_tables(inputs: RecInputs, config: RecommendationConfig) -> dict[str, pl.DataFrame]:
    recommendable = set(inputs.products.filter(pl.Series(inputs.recommendable))["product_id"].to_list())
    personal = user_recommendations(inputs, config)
    cold = fallback_recommendations(inputs, config)
    return {
        "user_recommendations": pl.concat([personal, cold.select(personal.columns)]).sort("user_id", "rank"),
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

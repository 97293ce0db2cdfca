"""Popular and trending lists per segment (the whole shop, each category, each country).

popular:  purchases in the last W days.
trending: growth of purchases in the last W days over the W days before,
          (current + 1) / (previous + 1), among products with at least `min_count`.
Both are also the cold-start path: a shopper with no history gets their country's list.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

SEGMENT_COLUMNS = {"overall": None, "category": "top_category", "country": "country"}


def _counts(purchases: pl.DataFrame, start: datetime, stop: datetime, keys: list[str]) -> pl.DataFrame:
    window = purchases.filter((pl.col("occurred_at") > start) & (pl.col("occurred_at") <= stop))
    return window.group_by([*keys, "product_id"]).agg(count=pl.len())


def _segment_frame(purchases: pl.DataFrame, segment_type: str) -> pl.DataFrame:
    column = SEGMENT_COLUMNS[segment_type]
    segment = pl.lit("all") if column is None else pl.col(column)
    return purchases.with_columns(segment=segment).filter(pl.col("segment").is_not_null())


def _ranked(frame: pl.DataFrame, order: list[str], k: int) -> pl.DataFrame:
    return (
        frame.sort(["segment", *order, "product_id"], descending=[False] + [True] * len(order) + [False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("segment"))
        .filter(pl.col("rank") <= k)
    )


def popular_tables(
    purchases: pl.DataFrame,
    recommendable: set[str],
    as_of: datetime,
    windows_days: tuple[int, ...],
    k: int,
    min_count: int,
) -> pl.DataFrame:
    """purchases (product_id, occurred_at, top_category, country) → the popular_products table."""
    eligible = purchases.filter(pl.col("product_id").is_in(list(recommendable)))
    parts = []
    for segment_type in SEGMENT_COLUMNS:
        by_segment = _segment_frame(eligible, segment_type)
        for days in windows_days:
            window = timedelta(days=days)
            current = _counts(by_segment, as_of - window, as_of, ["segment"])
            popular = _ranked(current, ["count"], k).with_columns(
                list=pl.lit("popular"),
                score=pl.col("count").cast(pl.Float64),
                reason=pl.format(f"popular in {{}}: {{}} orders in the last {days} days", "segment", "count"),
            )
            previous = _counts(by_segment, as_of - 2 * window, as_of - window, ["segment"]).rename(
                {"count": "previous"}
            )
            growth = (
                current.filter(pl.col("count") >= min_count)
                .join(previous, on=["segment", "product_id"], how="left")
                .with_columns(previous=pl.col("previous").fill_null(0))
                .with_columns(score=(pl.col("count") + 1) / (pl.col("previous") + 1))
            )
            trending = _ranked(growth, ["score", "count"], k).with_columns(
                list=pl.lit("trending"),
                reason=pl.format(
                    f"trending in {{}}: {{}} orders in the last {days} days, {{}} in the {days} before",
                    "segment",
                    "count",
                    "previous",
                ),
            )
            for frame in (popular, trending):
                parts.append(
                    frame.select(
                        "list",
                        segment_type=pl.lit(segment_type),
                        segment=pl.col("segment").cast(pl.Utf8),
                        window_days=pl.lit(days, dtype=pl.Int64),
                        rank=pl.col("rank").cast(pl.Int64),
                        product_id="product_id",
                        score=pl.col("score").cast(pl.Float64),
                        reason="reason",
                    )
                )
    if not parts:
        return pl.DataFrame(
            schema={
                "list": pl.Utf8,
                "segment_type": pl.Utf8,
                "segment": pl.Utf8,
                "window_days": pl.Int64,
                "rank": pl.Int64,
                "product_id": pl.Utf8,
                "score": pl.Float64,
                "reason": pl.Utf8,
            }
        )
    return pl.concat(parts).sort("list", "segment_type", "segment", "window_days", "rank")

"""Small polars helpers shared across layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def _in_order(keys: Sequence[str]) -> pl.Expr:
    """Per row: is it in ascending order after the row before it (nulls last; equal keys are in
    order)? Anything else, NaN included, counts as out of order."""
    ok = pl.lit(True)
    for key in reversed(keys):
        previous, current = pl.col(key).shift(1), pl.col(key)
        # Strictly before: a null is after every value (and not before another null).
        before = (
            pl.when(previous.is_null())
            .then(False)
            .when(current.is_null())
            .then(True)
            .otherwise(previous < current)
        )
        ok = before | (current.eq_missing(previous) & ok)
    return ok


def sorted_by(df: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """`df.sort(keys, nulls_last=True, maintain_order=True)`, without the copy when `df` is in
    that order already: a full sort of a million shoppers' lists (50M rows) holds the table
    twice, and the per-user table comes out of its blocks already ordered."""
    keys = list(keys)
    if df.height < 2 or not keys:
        return df
    if df.select(_in_order(keys).slice(1).all()).item():
        return df
    return df.sort(keys, nulls_last=True, maintain_order=True)


def vector_matrix(column: pl.Series) -> np.ndarray:
    """A column of equal-length vectors (List or Array) as a float32 rows × d matrix, without
    a Python list per row (a million shoppers' vectors would otherwise take minutes and GBs)."""
    if column.len() == 0:
        return np.zeros((0, 1), dtype=np.float32)
    if isinstance(column.dtype, pl.List):
        column = column.cast(pl.Array(pl.Float32, int(column.list.len().max())))
    return np.array(column.to_numpy(), dtype=np.float32, order="C")  # writable: torch shares it

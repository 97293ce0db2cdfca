"""What the ranker knows about a shopper, a product and the pair, as of one cut-off.

`FeatureContext.build` turns RecInputs (events strictly before the cut-off) into per-product
and per-user arrays and a few sparse users × products matrices; `pair_features` then reads
the values for any (user row, product row) pairs. Nothing here looks at or after `as_of`.

Repeat-purchase features follow the shopper's own rhythm for each product: how many separate
baskets held it, how long since the last one, and the mean gap between their baskets (the
personal re-order interval), so "overdue" = days since last / interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from recommendations.inputs import RecInputs

DAY = 86_400.0
# Feature columns the generators' block scores fill in (see recommendations.candidates).
SIGNAL_FEATURES = ("history_weight", "cooccurrence", "content", "als", "ease", "country_popularity")
RANKED_SIGNALS = ("cooccurrence", "content", "als", "ease")
PAIR_FEATURES = (
    "baskets",
    "days_since_last",
    "days_since_first",
    "cycle_days",
    "overdue",
    "category_affinity",
    "price_gap",
)
PRODUCT_FEATURES = (
    "sold_7d",
    "sold_30d",
    "sold_all",
    "buyers",
    "trend",
    "product_repeat_rate",
    "product_age_days",
    "days_since_first_sale",
    "log_price",
)
USER_FEATURES = (
    "user_baskets",
    "user_products",
    "user_days_since_last",
    "user_days_since_first",
    "user_repeat_share",
    "user_basket_size",
)
FEATURES = (
    SIGNAL_FEATURES
    + tuple(f"{name}_rank" for name in RANKED_SIGNALS)
    + PAIR_FEATURES
    + PRODUCT_FEATURES
    + USER_FEATURES
)


def _days(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_seconds() / DAY


@dataclass
class FeatureContext:
    inputs: RecInputs
    baskets: sp.csr_matrix  # users × products: distinct baskets holding the product
    last_age: sp.csr_matrix  # days since the last such basket, + 1 (so a zero means never)
    first_age: sp.csr_matrix  # days since the first, + 1
    category_share: sp.csr_matrix  # users × categories: share of the shopper's history weight
    product_category: np.ndarray  # P ints (-1: none)
    product: dict[str, np.ndarray]  # PRODUCT_FEATURES, each P floats
    user: dict[str, np.ndarray]  # USER_FEATURES, each U floats
    user_log_price: np.ndarray  # U floats, NaN when unknown
    log_price: np.ndarray  # P floats, NaN when unknown

    @classmethod
    def build(cls, inputs: RecInputs) -> FeatureContext:
        n_users, n_products = inputs.history.shape
        as_of = pl.lit(inputs.as_of)
        per_pair = (
            inputs.orders.group_by("user_row", "row")
            .agg(
                baskets=pl.col("basket").n_unique(),
                last=pl.col("occurred_at").max(),
                first=pl.col("occurred_at").min(),
            )
            .with_columns(
                last_age=_days(as_of - pl.col("last")) + 1.0,
                first_age=_days(as_of - pl.col("first")) + 1.0,
            )
        )
        shape = (n_users, n_products)

        def matrix(column: str) -> sp.csr_matrix:
            return sp.csr_matrix(
                (
                    per_pair[column].to_numpy().astype(np.float32),
                    (per_pair["user_row"].to_numpy(), per_pair["row"].to_numpy()),
                ),
                shape=shape,
            )

        categories = inputs.products["top_category"].fill_null("")
        names = np.asarray(categories.to_list(), dtype=object)
        codes = np.unique(names.astype(str), return_inverse=True)[1].reshape(-1) if len(names) else names
        product_category = np.where(names == "", -1, codes).astype(np.int64)
        n_categories = int(product_category.max(initial=-1)) + 1
        history = inputs.history.tocoo()
        known = product_category[history.col] >= 0
        by_category = sp.csr_matrix(
            (history.data[known], (history.row[known], product_category[history.col][known])),
            shape=(n_users, max(n_categories, 1)),
        )
        totals = np.asarray(inputs.history.sum(axis=1)).ravel()
        category_share = sp.diags(1.0 / np.maximum(totals, 1e-9)) @ by_category
        log_price = np.log1p(inputs.products["price"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        return cls(
            inputs=inputs,
            baskets=matrix("baskets"),
            last_age=matrix("last_age"),
            first_age=matrix("first_age"),
            category_share=category_share.tocsr().astype(np.float32),
            product_category=product_category,
            product=_product_features(inputs, per_pair, log_price),
            user=_user_features(inputs, per_pair),
            user_log_price=_user_log_price(inputs, log_price),
            log_price=log_price,
        )

    def pair_features(self, users: np.ndarray, products: np.ndarray) -> dict[str, np.ndarray]:
        """The PAIR_FEATURES, PRODUCT_FEATURES and USER_FEATURES of each (user row, product row)."""

        def sample(matrix: sp.csr_matrix) -> np.ndarray:
            return sample_at(matrix, users, products)

        baskets = sample(self.baskets)
        last, first = sample(self.last_age), sample(self.first_age)
        bought = baskets > 0
        days_since_last = np.where(bought, last - 1.0, np.nan)
        days_since_first = np.where(bought, first - 1.0, np.nan)
        repeated = baskets > 1
        cycle = np.where(repeated, (first - last) / np.maximum(baskets - 1.0, 1.0), np.nan)
        category = self.product_category[products]
        has_category = category >= 0
        affinity = np.full(len(users), np.nan, dtype=np.float32)
        if has_category.any():
            affinity[has_category] = sample_at(
                self.category_share, users[has_category], category[has_category]
            )
        columns = {
            "baskets": baskets,
            "days_since_last": days_since_last,
            "days_since_first": days_since_first,
            "cycle_days": cycle,
            "overdue": days_since_last / np.maximum(cycle, 1.0),
            "category_affinity": affinity,
            "price_gap": np.abs(self.log_price[products] - self.user_log_price[users]),
        }
        columns.update({name: values[products] for name, values in self.product.items()})
        columns.update({name: values[users] for name, values in self.user.items()})
        return {name: np.asarray(values, dtype=np.float32) for name, values in columns.items()}


def sample_at(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] for every i, 0 where nothing is stored.

    Why not scipy's `matrix[rows, cols]`: unless it is asked for more than a tenth of the
    matrix's entries, it scans each pair's whole row, so a block's co-occurrence scores
    (history × co-occurrence: thousands of entries a row) cost O(pairs × row length): a third
    of candidate generation on Online Retail. Here the entries of the rows asked for, in a
    canonical matrix (sorted, no duplicates), are keyed (row, column) in order once, and every
    pair is a binary search: O(entries of those rows + pairs × log). Same values: the stored
    ones, looked up."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    if not matrix.has_canonical_format:
        return np.asarray(matrix[rows, cols]).ravel().astype(np.float32)
    n_cols = np.int64(matrix.shape[1])
    cols = np.asarray(cols, dtype=np.int64)
    # The pairs in (row, column) order, by one sort: the touched rows and each pair's rank
    # among them are read off the sorted rows (np.unique would sort them a second time).
    # Searched in ascending order: each search starts where the last ended, and the parts of
    # `stored` it reads stay in cache (5x faster for a million pairs in random order; on
    # pairs already in order, as candidates' are, the stable sort costs one pass).
    order = np.argsort(np.asarray(rows, dtype=np.int64) * n_cols + cols, kind="stable")
    sorted_rows = np.asarray(rows)[order]
    first = np.r_[True, sorted_rows[1:] != sorted_rows[:-1]]
    touched = sorted_rows[first]
    starts, lengths = matrix.indptr[touched], np.diff(matrix.indptr)[touched]
    if lengths.sum() == 0:
        return np.zeros(len(rows), dtype=np.float32)
    # The touched rows' entries in storage order: row by row, columns ascending.
    offsets = np.cumsum(lengths) - lengths
    at = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
    stored = np.repeat(np.arange(len(touched), dtype=np.int64), lengths) * n_cols + matrix.indices[at]
    wanted = (np.cumsum(first) - 1) * n_cols + cols[order]  # ascending
    found = np.minimum(np.searchsorted(stored, wanted), len(stored) - 1)
    hit = stored[found] == wanted
    values = np.empty(len(rows), dtype=np.float32)
    values[order] = np.where(hit, matrix.data[at[found]], 0)
    return values


def _product_features(
    inputs: RecInputs, per_pair: pl.DataFrame, log_price: np.ndarray
) -> dict[str, np.ndarray]:
    n = inputs.products.height
    as_of = inputs.as_of

    def counted(frame: pl.DataFrame, value: pl.Expr) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        grouped = frame.group_by("row").agg(value=value)
        out[grouped["row"].to_numpy()] = grouped["value"].to_numpy()
        return out

    # Sales count every purchase, guests' too; buyers and re-buyers need a signed-in shopper.
    sales = inputs.purchases.join(inputs.products.select("product_id", "row"), on="product_id")
    sold_7d = counted(sales.filter(pl.col("occurred_at") >= as_of - timedelta(days=7)), pl.len())
    sold_30d = counted(sales.filter(pl.col("occurred_at") >= as_of - timedelta(days=30)), pl.len())
    sold_all = counted(sales, pl.len())
    buyers = counted(per_pair, pl.len())
    repeat_buyers = counted(per_pair.filter(pl.col("baskets") > 1), pl.len())
    first_sale = np.full(n, np.nan, dtype=np.float32)
    firsts = sales.group_by("row").agg(age=_days(pl.lit(as_of) - pl.col("occurred_at").min()))
    first_sale[firsts["row"].to_numpy()] = firsts["age"].to_numpy()
    listed = inputs.products["first_listed_at"] if "first_listed_at" in inputs.products.columns else None
    age = (
        np.full(n, np.nan, dtype=np.float32)
        if listed is None
        else ((as_of - listed).dt.total_seconds() / DAY).fill_null(np.nan).to_numpy()
    )
    return {
        "sold_7d": sold_7d,
        "sold_30d": sold_30d,
        "sold_all": sold_all,
        "buyers": buyers,
        "trend": (sold_7d + 1.0) / (sold_30d / 30.0 * 7.0 + 1.0),
        "product_repeat_rate": np.where(buyers > 0, repeat_buyers / np.maximum(buyers, 1.0), np.nan),
        "product_age_days": age,
        "days_since_first_sale": first_sale,
        "log_price": log_price,
    }


def _user_features(inputs: RecInputs, per_pair: pl.DataFrame) -> dict[str, np.ndarray]:
    n = inputs.users.height
    as_of = pl.lit(inputs.as_of)
    per_user = inputs.orders.group_by("user_row").agg(
        user_baskets=pl.col("basket").n_unique(),
        user_products=pl.col("row").n_unique(),
        user_days_since_last=_days(as_of - pl.col("occurred_at").max()),
        user_days_since_first=_days(as_of - pl.col("occurred_at").min()),
        lines=pl.len(),
    )
    repeats = per_pair.group_by("user_row").agg(
        repeat_products=(pl.col("baskets") > 1).sum(), products=pl.len()
    )
    per_user = per_user.join(repeats, on="user_row", how="left").with_columns(
        user_repeat_share=pl.col("repeat_products") / pl.col("products"),
        user_basket_size=pl.col("lines") / pl.col("user_baskets"),
    )
    out = {}
    rows = per_user["user_row"].to_numpy()
    for name in USER_FEATURES:
        values = np.full(n, np.nan, dtype=np.float32)
        values[rows] = per_user[name].cast(pl.Float64).to_numpy()
        out[name] = values
    return out


def _user_log_price(inputs: RecInputs, log_price: np.ndarray) -> np.ndarray:
    orders = inputs.orders.with_columns(
        log_price=pl.Series(log_price[inputs.orders["row"].to_numpy()], dtype=pl.Float64)
    ).filter(pl.col("log_price").is_not_nan())
    mean = orders.group_by("user_row").agg(pl.col("log_price").mean())
    out = np.full(inputs.users.height, np.nan, dtype=np.float32)
    out[mean["user_row"].to_numpy()] = mean["log_price"].to_numpy()
    return out

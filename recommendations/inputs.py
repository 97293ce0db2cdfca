"""Everything the recommenders read, gathered once from the marts and LanceDB into arrays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from core.frames import vector_matrix
from embeddings.users import product_weights
from recommendations.signals import cooccurrence_matrix, decayed_popularity, sparse_user_product

COPY_BLOCK = 65_536  # vectors copied at a time


@dataclass
class VectorsById:
    """Row i of `matrix` is the vector of `ids[i]`: a million shoppers' vectors travel as one
    float32 matrix, never as a column of per-row lists (which costs a copy per step)."""

    ids: pl.Series  # Utf8
    matrix: np.ndarray  # len(ids) × d, float32

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, id_column: str) -> VectorsById:
        """From LanceDB rows (id, vector)."""
        return cls(frame[id_column].cast(pl.Utf8), vector_matrix(frame["vector"]))


@dataclass
class RecInputs:
    as_of: datetime
    products: pl.DataFrame  # product_id, title, top_category, is_recommendable, row (0..P-1)
    product_matrix: np.ndarray  # P × d, unit rows
    recommendable: np.ndarray  # P bools: listed, merchandise, not excluded
    users: pl.DataFrame  # user_id, country, user_row (0..U-1)
    user_matrix: np.ndarray  # U × d, zero rows for users without a vector
    has_vector: np.ndarray  # U bools
    history: sp.csr_matrix  # U × P, decayed interaction weights (>= 0)
    purchased: sp.csr_matrix  # U × P, 1 where the user bought the product
    cooccurrence: sp.csr_matrix  # P × P, cosine-normalised
    popularity: np.ndarray  # P, in [0, 1]
    purchases: pl.DataFrame  # product_id, occurred_at, top_category, country (for popular lists)
    # Signed-in purchases, one row per purchase event: user_row, row, occurred_at, basket (the
    # session, else the day): what repeat-purchase and next-basket methods read.
    orders: pl.DataFrame

    @property
    def product_ids(self) -> list[str]:
        return self.products["product_id"].to_list()


def build_inputs(
    products: pl.DataFrame,
    product_vectors: pl.DataFrame,
    users: pl.DataFrame,
    user_vectors: VectorsById,
    events: pl.DataFrame | pl.LazyFrame,
    as_of: datetime,
    excluded_product_ids: set[str],
    history_half_life_days: float,
    popularity_half_life_days: float,
    interaction_weights: Mapping[str, float],
) -> RecInputs:
    """products: dim_products; product_vectors: LanceDB rows (product_id, vector); users:
    dim_users (user_id, country); user_vectors: the shoppers' vectors; events: fct_events
    (user_id, session_id, product_id, event_type, occurred_at, country) up to `as_of`;
    interaction_weights: event type → weight in a shopper's history (dbt's var)."""
    catalog = (
        products.join(product_vectors.select("product_id", "vector"), on="product_id", how="inner")
        .sort("product_id")
        .with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
    )
    product_matrix = vector_matrix(catalog["vector"])
    recommendable = (
        catalog["is_recommendable"].to_numpy()
        & ~catalog["product_id"].is_in(list(excluded_product_ids)).to_numpy()
    )
    rows = catalog.select("product_id", "row")

    people = users.select("user_id", "country").sort("user_id").with_row_index("user_row")
    people = people.with_columns(pl.col("user_row").cast(pl.Int64))
    # Lazy: each input below reads only its columns and rows of the log, so no full-width
    # copy of a shop's ten million events is ever held (polars fuses filter, join and select).
    events = (
        events.lazy().filter(pl.col("occurred_at") <= as_of).join(rows.lazy(), on="product_id", how="inner")
    )
    signed_in = events.filter(pl.col("user_id").is_not_null())
    user_rows = people.lazy().select("user_id", "user_row")
    weights = product_weights(
        signed_in.select("user_id", "product_id", "event_type", "occurred_at").collect(),
        history_half_life_days,
        interaction_weights,
    )
    weights = weights.join(people.select("user_id", "user_row"), on="user_id").join(rows, on="product_id")
    bought = (
        signed_in.filter(pl.col("event_type") == "purchase")
        .select("user_id", "product_id")
        .unique()
        .join(user_rows, on="user_id")
        .join(rows.lazy(), on="product_id")
        .with_columns(one=pl.lit(1.0))
        .collect()
    )
    baskets = (
        events.filter(pl.col("event_type").is_in(["purchase", "add_to_cart", "view"]))
        .select(session_key=pl.coalesce(pl.col("session_id"), pl.col("user_id")), row=pl.col("row"))
        .filter(pl.col("session_key").is_not_null())
        .collect()
    )
    purchases = (
        events.filter(pl.col("event_type") == "purchase")
        .join(catalog.lazy().select("product_id", "top_category"), on="product_id")
        .select("product_id", "occurred_at", "top_category", "country")
        .collect()
    )
    orders = (
        signed_in.filter(pl.col("event_type") == "purchase")
        .join(user_rows, on="user_id")
        .select(
            "user_row",
            "row",
            "occurred_at",
            basket=pl.coalesce(pl.col("session_id"), pl.col("occurred_at").dt.date().cast(pl.Utf8)),
        )
        .sort("user_row", "occurred_at", "row")
        .collect()
    )
    popularity = decayed_popularity(
        events.select("row", "event_type", "occurred_at").collect(),
        catalog.height,
        as_of,
        popularity_half_life_days,
    )
    history = sparse_user_product(weights, people.height, catalog.height, "weight")
    purchased = sparse_user_product(bought, people.height, catalog.height, "one")
    cooccurrence = cooccurrence_matrix(baskets, catalog.height)
    del weights, bought, baskets
    # The shoppers' matrix last, once the event log's intermediates are freed: with the
    # caller's copy of the vectors it is two matrices (1.5 GB each at a million shoppers),
    # which on top of those intermediates made this function's peak.
    dimension = product_matrix.shape[1]
    user_matrix = np.zeros((people.height, dimension), dtype=np.float32)
    has_vector = np.zeros(people.height, dtype=bool)
    if len(user_vectors.ids):
        located = people.join(
            pl.DataFrame({"user_id": user_vectors.ids, "source": np.arange(len(user_vectors.ids))}),
            on="user_id",
            how="inner",
        )
        positions, sources = located["user_row"].to_numpy(), located["source"].to_numpy()
        for start in range(0, len(positions), COPY_BLOCK):  # no full-size temporary copy
            block = slice(start, start + COPY_BLOCK)
            user_matrix[positions[block]] = user_vectors.matrix[sources[block]]
        has_vector[positions] = True
    return RecInputs(
        as_of=as_of,
        products=catalog.drop("vector"),
        product_matrix=product_matrix,
        recommendable=recommendable,
        users=people,
        user_matrix=user_matrix,
        has_vector=has_vector,
        history=history,
        purchased=purchased,
        cooccurrence=cooccurrence,
        popularity=popularity,
        purchases=purchases,
        orders=orders,
    )


def purchase_counts(inputs: RecInputs, since_days: float | None = None) -> np.ndarray:
    """Purchases per product position before the cut-off (optionally only the last N days)."""
    purchases = inputs.purchases
    if since_days is not None:
        purchases = purchases.filter(pl.col("occurred_at") >= inputs.as_of - timedelta(days=since_days))
    counted = (
        purchases.group_by("product_id")
        .agg(n=pl.len())
        .join(inputs.products.select("product_id", "row"), on="product_id")
    )
    counts = np.zeros(inputs.products.height, dtype=np.float32)
    counts[counted["row"].to_numpy()] = counted["n"].to_numpy()
    return counts

"""A shop's whole history in memory, and the recommender inputs as they stood at any moment.

Training a ranker on past cut-offs, evaluating offline and building tonight's tables all ask
the same question, "what did we know at time t?": `inputs_as_of` answers it from events
strictly before t, with user vectors recomputed from those events alone, so nothing from t
onwards can leak into a feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from core.frames import vector_matrix
from embeddings.users import user_vectors
from recommendations.config import RecommendationConfig
from recommendations.inputs import RecInputs, VectorsById, build_inputs


@dataclass
class ShopData:
    """The marts and the product vectors, over the whole log, and the event-type weights the
    marts were built with (dbt's `interaction_weights`), which the user vectors use too."""

    products: pl.DataFrame  # dim_products
    product_vectors: pl.DataFrame  # product_id, vector
    users: pl.DataFrame  # user_id, country
    events: pl.DataFrame  # user_id, session_id, product_id, event_type, occurred_at, country
    interaction_weights: Mapping[str, float]  # event type -> weight


class LeakageError(AssertionError):
    """Input meant to describe the past holds an event at or after its cut-off."""


def assert_before(events: pl.DataFrame | pl.LazyFrame, cutoff: datetime, what: str) -> None:
    latest = events.lazy().select(pl.col("occurred_at").max()).collect().item()
    if latest is not None and latest >= cutoff:
        raise LeakageError(f"{what} holds events at or after {cutoff}")


def inputs_as_of(
    data: ShopData,
    as_of: datetime,
    config: RecommendationConfig,
    listed_before: datetime | None = None,
) -> RecInputs:
    """RecInputs from the events strictly before `as_of`; the catalog is what was listed
    before `listed_before` (default `as_of`), so products launched later in a label window
    can still be recommended from their titles."""
    # Lazy: only the columns and rows each input needs are ever materialised.
    train = data.events.lazy().filter(pl.col("occurred_at") < as_of)
    assert_before(train, as_of, "training input")
    catalog = data.products.filter(pl.col("first_listed_at") < (listed_before or as_of))
    vectors = data.product_vectors.filter(pl.col("product_id").is_in(catalog["product_id"].implode()))
    signed_in = train.filter(pl.col("user_id").is_not_null())
    # An early cut-off may predate every listed product: an empty (0 × d) matrix then.
    dimension = vector_matrix(data.product_vectors["vector"].head(1)).shape[1]
    matrix = vector_matrix(vectors["vector"]).reshape(vectors.height, dimension)
    users = user_vectors(
        signed_in.select("user_id", "product_id", "event_type", "occurred_at").collect(),
        vectors["product_id"].to_list(),
        matrix,
        config.history_half_life_days,
        data.interaction_weights,
    )
    return build_inputs(
        catalog,
        vectors,
        data.users,
        VectorsById(pl.Series(users.user_ids, dtype=pl.Utf8), users.vectors),
        train,
        as_of,
        set(config.excluded_product_ids),
        config.history_half_life_days,
        config.popularity_half_life_days,
        data.interaction_weights,
    )

"""User vectors: the weighted mean of the vectors of the products in a shopper's history.

weight(user, product) = max(0, Σ over the user's events on it of
                               type_weight(event) × 0.5 ** (age_days / half_life_days))

- type weights are given by the caller: dbt's `interaction_weights` (dbt_project.yml, read
  by core.dbt_manifest.interaction_weights), one source for both: view 1 < add_to_cart 3 <
  purchase 5; remove_from_cart -1 and return -5 *subtract*; other types weigh nothing;
- a product's total is clipped at zero: a returned purchase cancels out, it never pushes
  the vector away from the product (a return says "not this one", not "the opposite");
- age is measured from the user's own latest event, so a vector depends on that user's
  history alone: it does not drift as the calendar moves, and recomputing only the users
  with new events gives exactly what a full recompute gives;
- users whose weights are all zero, or whose products have no vector, get no vector
  (counted; cold start is served by popularity downstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import scipy.sparse as sp

from core.frames import vector_matrix

if TYPE_CHECKING:
    import pyarrow as pa

VECTOR_BLOCK = 50_000  # users whose float64 vectors are summed at once


@dataclass
class UserVectors:
    user_ids: list[str]
    vectors: np.ndarray  # (users, dim) float32, unit rows
    events_used: list[int]
    last_event_at: list
    without_vector: list[str] = field(default_factory=list)


def product_weights(
    events: pl.DataFrame, half_life_days: float, weights: Mapping[str, float]
) -> pl.DataFrame:
    """events (user_id, product_id, event_type, occurred_at) → one weight per user × product;
    `weights`: event type → weight."""
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    type_weight = pl.col("event_type").replace_strict(dict(weights), default=0.0, return_dtype=pl.Float64)
    latest = pl.col("occurred_at").max().over("user_id")
    age_days = (latest - pl.col("occurred_at")).dt.total_seconds() / 86_400.0
    return (
        events.with_columns(w=type_weight * (0.5 ** (age_days / half_life_days)))
        .group_by("user_id", "product_id")
        .agg(weight=pl.col("w").sum(), events=pl.len(), last_event_at=pl.col("occurred_at").max())
        .with_columns(weight=pl.col("weight").clip(lower_bound=0.0))
    )


def user_vectors(
    events: pl.DataFrame,
    product_ids: list[str],
    product_matrix: np.ndarray,
    half_life_days: float,
    weights: Mapping[str, float],
) -> UserVectors:
    """Weighted, normalised means. `product_matrix[i]` is the vector of `product_ids[i]`."""
    all_users = sorted(events["user_id"].unique().to_list())
    index = pl.DataFrame(
        {"product_id": product_ids, "row": np.arange(len(product_ids), dtype=np.int64)},
        schema={"product_id": pl.Utf8, "row": pl.Int64},
    )
    pairs = product_weights(events, half_life_days, weights).join(index, on="product_id", how="inner")
    per_user = (
        pairs.filter(pl.col("weight") > 0)
        .group_by("user_id")
        .agg(events=pl.col("events").sum(), last_event_at=pl.col("last_event_at").max())
        .sort("user_id")
        .with_row_index("position")
    )
    positive = pairs.filter(pl.col("weight") > 0).join(per_user.select("user_id", "position"), on="user_id")
    weight_matrix = sp.csr_matrix(
        (
            positive["weight"].to_numpy().astype(np.float64),
            (positive["position"].to_numpy(), positive["row"].to_numpy()),
        ),
        shape=(per_user.height, len(product_ids)),
    )
    dimension = product_matrix.shape[1]
    products64 = product_matrix.astype(np.float64)
    vectors = np.zeros((per_user.height, dimension), dtype=np.float32)
    usable = np.zeros(per_user.height, dtype=bool)
    for start in range(0, per_user.height, VECTOR_BLOCK):
        # Sparse weights × product vectors, a block of users at a time (float64 sums).
        block = np.asarray(weight_matrix[start : start + VECTOR_BLOCK] @ products64)
        norms = np.linalg.norm(block, axis=1)
        ok = norms > 1e-9  # weights that cancel to nothing say nothing
        vectors[start : start + len(block)][ok] = (block[ok] / norms[ok, None]).astype(np.float32)
        usable[start : start + len(block)] = ok
    if not usable.all():  # the copy costs a vector per shopper: only when some are dropped
        vectors = vectors[usable]
    kept = per_user.filter(pl.Series(usable))
    with_vector = set(kept["user_id"].to_list())
    return UserVectors(
        user_ids=kept["user_id"].to_list(),
        vectors=vectors,
        events_used=kept["events"].to_list(),
        last_event_at=kept["last_event_at"].to_list(),
        without_vector=[u for u in all_users if u not in with_vector],
    )


@dataclass
class UserSync:
    full: bool
    recomputed: int
    with_vector: int
    without_vector: int
    total_vectors: int
    seconds: float
    version: int


def _user_rows(result: UserVectors, fingerprint: str, product_version: int, now) -> pa.Table:
    import pyarrow as pa

    dimension = result.vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(result.vectors).reshape(-1), pa.float32())
    return pa.table(
        {
            "user_id": pa.array(result.user_ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dimension),
            "model_fingerprint": pa.array([fingerprint] * len(result.user_ids), pa.string()),
            "product_embeddings_version": pa.array([product_version] * len(result.user_ids), pa.int64()),
            "events_used": pa.array(result.events_used, pa.int64()),
            "last_event_at": pa.array(result.last_event_at, pa.timestamp("us")),
            "updated_at": pa.array([now] * len(result.user_ids), pa.timestamp("us")),
        }
    )


def sync_user_embeddings(
    db,
    load_events,
    users_with_new_events: set[str],
    now,
    half_life_days: float,
    weights: Mapping[str, float],
    full: bool = False,
) -> UserSync:
    """Recompute the users whose history changed: new events, or a product in their history
    re-encoded since their vector was made. `load_events(user_ids | None)` returns the full
    history (user_id, product_id, event_type, occurred_at) of those users (None: everyone).
    A first run, a model change or `full=True` recomputes everyone.
    """
    import time

    from embeddings.store import PRODUCT_TABLE, USER_TABLE, in_batches, open_table, read_table

    started = time.perf_counter()
    products = read_table(db, PRODUCT_TABLE)
    if products is None or products.is_empty():
        # No catalog yet (e.g. a late landing day backfilled first): nobody can have a vector.
        users = load_events(None)["user_id"].n_unique()
        existing_table = open_table(db, USER_TABLE)
        return UserSync(
            full=False,
            recomputed=0,
            with_vector=0,
            without_vector=users,
            total_vectors=existing_table.count_rows() if existing_table else 0,
            seconds=time.perf_counter() - started,
            version=existing_table.version if existing_table else 0,
        )
    fingerprint = products["model_fingerprint"][0]
    product_version = open_table(db, PRODUCT_TABLE).version
    existing = read_table(db, USER_TABLE, columns=["model_fingerprint", "updated_at"])
    full = (
        full
        or existing is None
        or existing.is_empty()
        or (existing["model_fingerprint"] != fingerprint).any()
    )

    if full:
        affected = None
    else:
        last_sync = existing["updated_at"].max()
        re_encoded = set(products.filter(pl.col("updated_at") > last_sync)["product_id"].to_list())
        affected = set(users_with_new_events)
        if re_encoded:
            history = load_events(None).filter(pl.col("product_id").is_in(list(re_encoded)))
            affected |= set(history["user_id"].unique().to_list())
        affected = sorted(affected)

    events = load_events(affected)
    matrix = vector_matrix(products["vector"])
    result = user_vectors(events, products["product_id"].to_list(), matrix, half_life_days, weights)
    rows = _user_rows(result, fingerprint, product_version, now)
    if full:
        table = db.create_table(USER_TABLE, in_batches(rows), mode="overwrite")
    else:
        table = open_table(db, USER_TABLE)
        if rows.num_rows:
            table.merge_insert("user_id").when_matched_update_all().when_not_matched_insert_all().execute(
                rows
            )
        # Users whose history now nets to nothing (everything returned) lose their vector.
        stale = sorted(set(affected) - set(result.user_ids))
        if stale:
            quoted = ", ".join("'" + u.replace("'", "''") + "'" for u in stale)
            table.delete(f"user_id in ({quoted})")
    return UserSync(
        full=full,
        recomputed=len(result.user_ids) + len(result.without_vector),
        with_vector=len(result.user_ids),
        without_vector=len(result.without_vector),
        total_vectors=table.count_rows(),
        seconds=time.perf_counter() - started,
        version=table.version,
    )

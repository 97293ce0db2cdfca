"""Product and user vectors in LanceDB, kept in step with the marts each night."""

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.dbt_args import landing_window
from assets.partitions import daily_partitions
from assets.resources import EmbeddingEncoder, ShopguideHome
from core.dbt_manifest import interaction_weights
from core.frames import vector_matrix
from embeddings.products import sync_product_embeddings
from embeddings.store import PRODUCT_TABLE, USER_TABLE, connect, read_table, vector_batches
from embeddings.users import sync_user_embeddings
from warehouse.store import connect as connect_warehouse

NORM_TOLERANCE = 1e-3


def vector_checks(batches: Iterable[np.ndarray], dimension: int, prefix: str) -> list[AssetCheckResult]:
    """No NaN, unit norm, the model's dimension: the invariants every consumer relies on.
    `batches`: the vectors as float32 matrices, a block at a time (a million shoppers' vectors
    need not be held at once to be checked)."""
    has_nan, worst, widths = False, 0.0, set()
    for vectors in batches:
        if vectors.size == 0:
            continue
        widths.add(int(vectors.shape[1]))
        has_nan = has_nan or bool(np.isnan(vectors).any())
        errors = np.abs(np.linalg.norm(vectors, axis=1) - 1.0)
        worst = max(worst, float(np.max(errors)))  # NaN compares false below: it fails too
    # No vectors yet: nothing contradicts the dimension. Mixed widths: -1.
    actual = dimension if not widths else (widths.pop() if len(widths) == 1 else -1)
    return [
        AssetCheckResult(
            check_name=f"{prefix}_no_nan",
            passed=not has_nan,
            severity=AssetCheckSeverity.ERROR,
        ),
        AssetCheckResult(
            check_name=f"{prefix}_unit_norm",
            passed=not has_nan and worst <= NORM_TOLERANCE,
            severity=AssetCheckSeverity.ERROR,
            metadata={"max_norm_error": worst},
        ),
        AssetCheckResult(
            check_name=f"{prefix}_dimension",
            passed=actual == dimension,
            severity=AssetCheckSeverity.ERROR,
            metadata={"expected": dimension, "actual": actual},
        ),
    ]


def vector_check_specs(asset_name: str, prefix: str, extra: list[tuple[str, str]]) -> list[AssetCheckSpec]:
    specs = [
        (f"{prefix}_no_nan", "No vector contains NaN."),
        (f"{prefix}_unit_norm", "Every vector has length 1 (± 1e-3)."),
        (f"{prefix}_dimension", "Every vector has the model's dimension."),
        *extra,
    ]
    return [AssetCheckSpec(name, asset=asset_name, description=text, blocking=True) for name, text in specs]


COUNT_CHECK_DESCRIPTION = "One vector per product in dim_products; listed counts agree."


def sync_catalog_vectors(
    paths, text_encoder, table_name: str, prefix: str, count_check: str, for_search: bool = False
) -> tuple[dict, list[AssetCheckResult]]:
    """dim_products → the LanceDB table `table_name` (only changed products encoded; `for_search`:
    the full-text and ANN indexes search reads kept current); returns its metadata and its
    vector and count checks."""
    with connect_warehouse(paths.warehouse, read_only=True) as con:
        products = con.sql("select * from dim_products order by product_id").pl()
    db = connect(paths.lancedb_uri)
    result = sync_product_embeddings(
        db,
        products,
        text_encoder,
        datetime.now(UTC).replace(tzinfo=None),
        table_name=table_name,
        text_index=for_search,
        vector_index=for_search,
    )
    stored = read_table(db, table_name)
    vectors = vector_matrix(stored["vector"])
    counts_agree = stored.height == products.height and int(stored["is_listed"].sum()) == int(
        products["is_listed"].sum()
    )
    described = text_encoder.describe()
    return (
        {
            "dagster/row_count": stored.height,
            "encoded": result.encoded,
            "reused": result.reused,
            "filters_updated": result.metadata_updated,
            "listed": result.listed,
            "model": described["model"],
            "model_fingerprint": described["fingerprint"],
            "device": described["device"],
            "dtype": described["dtype"],
            "texts_per_second": round(result.texts_per_second, 1),
            "duration_seconds": round(result.seconds, 2),
            "index_seconds": round(result.index_seconds, 2),
            "lancedb_version": result.version,
            "vector_index": result.indexed,
            **({"text_index_rebuilt": result.text_index_built} if for_search else {}),
        },
        [
            *vector_checks([vectors], text_encoder.dimension, prefix),
            AssetCheckResult(
                check_name=count_check,
                passed=counts_agree,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "vectors": stored.height,
                    "products": products.height,
                    "listed_vectors": int(stored["is_listed"].sum()),
                    "listed_products": int(products["is_listed"].sum()),
                },
            ),
        ],
    )


# What every asset that encodes the catalog shares: one run per backfill, after dim_products.
CATALOG_VECTOR_ASSET = {
    "deps": [AssetKey("dim_products")],
    "partitions_def": daily_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "group_name": "embeddings",
    "owners": ["team:ml"],
}


@asset(
    **CATALOG_VECTOR_ASSET,
    kinds={"lancedb", "pytorch"},
    check_specs=vector_check_specs(
        "product_embeddings", "product", [("vector_count_matches_catalog", COUNT_CHECK_DESCRIPTION)]
    ),
    description=(
        "One sentence-transformers vector per product (title, category, brand, description), in "
        "LanceDB with filter columns. Only new or changed product text is encoded; delisted "
        "products keep their vector, marked is_listed = false. Each write is a LanceDB version."
    ),
)
def product_embeddings(
    context: AssetExecutionContext, shopguide: ShopguideHome, encoder: EmbeddingEncoder
) -> MaterializeResult:
    metadata, checks = sync_catalog_vectors(
        shopguide.paths(), encoder.encoder(), PRODUCT_TABLE, "product", "vector_count_matches_catalog"
    )
    return MaterializeResult(metadata=metadata, check_results=checks)


HISTORY_SQL = """
    select user_id, product_id, event_type, occurred_at
    from fct_events
    where user_id is not null and product_id is not null and is_merchandise
"""


@asset(
    deps=[AssetKey("fct_events"), AssetKey("product_embeddings")],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="embeddings",
    owners=["team:ml"],
    kinds={"lancedb"},
    check_specs=vector_check_specs("user_embeddings", "user", []),
    description=(
        "One vector per signed-in shopper: the recency-weighted mean of the vectors of the "
        "products in their history (view 1 < cart 3 < purchase 5; returns subtract, clipped "
        "at zero per product; 30-day half-life). Only shoppers with new events, or whose "
        "products were re-encoded, are recomputed. Shoppers with no usable history get none."
    ),
)
def user_embeddings(
    context: AssetExecutionContext, shopguide: ShopguideHome, encoder: EmbeddingEncoder
) -> MaterializeResult:
    paths = shopguide.paths()
    first, last = landing_window(context.partition_time_window.start, context.partition_time_window.end)
    with connect_warehouse(paths.warehouse, read_only=True) as con:
        new = con.execute(
            "select distinct user_id from fct_events where user_id is not null and landed_on between ? and ?",
            [first, last],
        ).fetchall()
        users_seen = con.sql(f"select count(distinct user_id) from ({HISTORY_SQL})").fetchall()[0][0]

    def load_events(user_ids):
        # Only the shoppers being recomputed are read: at 1e7 events the whole history would
        # be most of the step's memory for a night that touches a few thousand shoppers.
        with connect_warehouse(paths.warehouse, read_only=True) as con:
            if user_ids is None:
                return con.sql(HISTORY_SQL).pl()
            wanted = HISTORY_SQL + " and user_id in (select unnest(?::varchar[]))"
            return con.sql(wanted, params=[sorted(user_ids)]).pl()

    db = connect(paths.lancedb_uri)
    result = sync_user_embeddings(
        db,
        load_events,
        {row[0] for row in new},
        datetime.now(UTC).replace(tzinfo=None),
        encoder.half_life_days,
        interaction_weights(),
    )
    first_block = next(vector_batches(db, PRODUCT_TABLE, batch_rows=1), None)
    dimension = first_block.shape[1] if first_block is not None else 0
    return MaterializeResult(
        metadata={
            "dagster/row_count": result.total_vectors,
            "full_recompute": result.full,
            "recomputed_users": result.recomputed,
            "users_with_vector": result.with_vector,
            "users_without_usable_history": result.without_vector,
            "half_life_days": encoder.half_life_days,
            "duration_seconds": round(result.seconds, 2),
            "lancedb_version": result.version,
            "users_seen": MetadataValue.int(int(users_seen)),
        },
        check_results=vector_checks(vector_batches(db, USER_TABLE), dimension, "user"),
    )

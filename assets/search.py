"""The product-search vectors: the catalog encoded by the search model, with its text index."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, MaterializeResult, asset

from assets.embeddings import (
    CATALOG_VECTOR_ASSET,
    COUNT_CHECK_DESCRIPTION,
    sync_catalog_vectors,
    vector_check_specs,
)
from assets.resources import SearchEncoder, ShopguideHome
from embeddings.store import SEARCH_TABLE, connect, open_table, text_index


@asset(
    **CATALOG_VECTOR_ASSET,
    kinds={"lancedb"},
    check_specs=vector_check_specs(
        "product_search",
        "search",
        [
            ("search_count_matches_catalog", COUNT_CHECK_DESCRIPTION),
            ("search_text_index", "A full-text (BM25) index on the product text covers every row."),
        ],
    ),
    description=(
        "One vector per product from the search model (multilingual e5 by default), in the LanceDB "
        "table product_search with the filter columns and a full-text index: what `shopguide search` "
        "and the search API read. Kept apart from product_embeddings so that the recommender's "
        "vectors do not change with the search model. Only new or changed product text is encoded."
    ),
)
def product_search(
    context: AssetExecutionContext, shopguide: ShopguideHome, search_encoder: SearchEncoder
) -> MaterializeResult:
    paths = shopguide.paths()
    metadata, checks = sync_catalog_vectors(
        paths,
        search_encoder.encoder(),
        SEARCH_TABLE,
        "search",
        "search_count_matches_catalog",
        for_search=True,
    )
    index = text_index(open_table(connect(paths.lancedb_uri), SEARCH_TABLE))
    checks.append(
        AssetCheckResult(
            check_name="search_text_index",
            passed=index is not None and index.num_unindexed_rows == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={"unindexed_rows": -1 if index is None else index.num_unindexed_rows},
        )
    )
    return MaterializeResult(metadata=metadata, check_results=checks)

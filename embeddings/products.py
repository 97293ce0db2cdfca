"""Product vectors kept in step with the catalog: only new or changed text is encoded.

The same sync writes the recommender's table (PRODUCT_TABLE) and, with the search model,
the search table (SEARCH_TABLE), which also gets the full-text index hybrid search reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import pyarrow as pa

from core.frames import vector_matrix
from embeddings.encoder import Encoder
from embeddings.product_text import product_text, text_hash
from embeddings.store import (
    PRODUCT_TABLE,
    ensure_text_index,
    ensure_vector_index,
    has_vector_index,
    read_table,
    upsert,
)

# Columns that filtered search uses; a change in them rewrites the row, not the vector.
FILTER_COLUMNS = ("category_path", "top_category", "brand", "price", "is_listed", "is_merchandise")
INDEX_MIN_ROWS = 100_000


@dataclass
class ProductSync:
    total: int
    encoded: int
    reused: int
    metadata_updated: int
    listed: int
    encode_seconds: float
    seconds: float
    version: int
    indexed: bool  # an ANN vector index exists
    text_index_built: bool  # the full-text index was (re)built by this sync
    # Of `seconds`, building or updating the ANN and full-text indexes: work a vector store
    # does after loading, whatever produced the vectors (100k rows: ~20 s for the ANN index).
    index_seconds: float = 0.0

    @property
    def texts_per_second(self) -> float:
        return self.encoded / self.encode_seconds if self.encode_seconds else 0.0


def encode_distinct(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """`encoder.encode(texts)`, each distinct text encoded once: a catalog repeats texts
    (variants, re-listed products; 12% of a synthetic 100k catalog), and the multilingual
    search model costs ~0.8 ms of CPU per token."""
    row_of: dict[str, int] = {}
    rows = np.fromiter(
        (row_of.setdefault(text, len(row_of)) for text in texts), dtype=np.int64, count=len(texts)
    )
    if len(row_of) == len(texts):
        return encoder.encode(texts)
    return encoder.encode(list(row_of))[rows]


def catalog_texts(products: pl.DataFrame) -> pl.DataFrame:
    """dim_products rows → the text to encode and its hash, plus the filter columns."""
    texts = [
        product_text(
            row["product_id"],
            row["title"],
            row.get("category_path"),
            row.get("brand"),
            row.get("description"),
        )
        for row in products.iter_rows(named=True)
    ]
    return (
        products.select("product_id", "title", *FILTER_COLUMNS)
        .with_columns(
            text=pl.Series(texts, dtype=pl.Utf8),
            text_hash=pl.Series([text_hash(t) for t in texts], dtype=pl.Utf8),
        )
        .with_columns(pl.col("is_listed").alias("in_stock"))
    )  # no stock feed yet: listed means sellable


def _arrow_rows(frame: pl.DataFrame, vectors: np.ndarray, encoder: Encoder, updated_at: datetime) -> pa.Table:
    dimension = vectors.shape[1] if len(vectors) else encoder.dimension
    vector_type = pa.list_(pa.float32(), dimension)
    table = frame.with_columns(
        model=pl.lit(encoder.name),
        model_fingerprint=pl.lit(encoder.fingerprint),
    ).to_arrow()
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = table.append_column(
        "vector", pa.FixedSizeListArray.from_arrays(flat, dimension).cast(vector_type)
    )
    if "updated_at" not in table.column_names:
        table = table.append_column("updated_at", pa.array([updated_at] * table.num_rows, pa.timestamp("us")))
    return table


def sync_product_embeddings(
    db,
    products: pl.DataFrame,
    encoder: Encoder,
    now: datetime,
    index_min_rows: int = INDEX_MIN_ROWS,
    table_name: str = PRODUCT_TABLE,
    text_index: bool = False,
    vector_index: bool = False,
) -> ProductSync:
    """Encode products whose text (or model) changed; rewrite rows whose filters changed;
    with `text_index`, bring the full-text index up to date; with `vector_index`, keep an
    ANN index once the table has `index_min_rows` rows.

    Delisted products keep their vector with is_listed false: evaluation needs history.
    The recommender's table gets neither index by default: the recommender reads it whole,
    and only search queries it (its fallback, before product_search has built the search
    table, where an exact scan is right). An ANN index over 100k products cost 31 s to
    build on 2 cores, and each index write is one more LanceDB version, which monitoring
    compares night to night.
    """
    started = time.perf_counter()
    desired = catalog_texts(products)
    existing = read_table(db, table_name)
    if (
        existing is None
        or existing.is_empty()
        or (existing["model_fingerprint"] != encoder.fingerprint).any()
    ):
        previous = None  # nothing reusable: a different model's vectors are never mixed in
    else:
        previous = existing.select(
            "product_id", "text_hash", *FILTER_COLUMNS, "in_stock", "vector", "updated_at"
        )

    if previous is None:
        to_encode, to_rewrite = desired, desired.clear()
    else:
        joined = desired.join(previous, on="product_id", how="left", suffix="_old")
        needs_vector = pl.col("text_hash_old").is_null() | (pl.col("text_hash") != pl.col("text_hash_old"))
        changed_filters = pl.any_horizontal(
            [pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in (*FILTER_COLUMNS, "in_stock")]
        )
        to_encode = joined.filter(needs_vector).select(desired.columns)
        to_rewrite = joined.filter(~needs_vector & changed_filters)

    if to_encode.height:
        encoder.warm_up()  # model load is not encoding: keep it out of the throughput figure
    encode_started = time.perf_counter()
    vectors = encode_distinct(encoder, to_encode["text"].to_list())
    encode_seconds = time.perf_counter() - encode_started
    batches = [_arrow_rows(to_encode, vectors, encoder, now)]
    if to_rewrite.height:
        reused_vectors = vector_matrix(to_rewrite["vector"])
        kept = to_rewrite.select(*desired.columns, pl.col("updated_at"))
        batches.append(_arrow_rows(kept, reused_vectors, encoder, now))
    rows = pa.concat_tables([b.select(batches[0].column_names) for b in batches]) if batches else None
    table = (
        upsert(db, table_name, rows, key="product_id")
        if previous is not None
        else db.create_table(table_name, rows, mode="overwrite")
    )
    index_started = time.perf_counter()
    changed = bool(to_encode.height or to_rewrite.height)
    indexed = (
        ensure_vector_index(table, index_min_rows) if vector_index and changed else has_vector_index(table)
    )
    # After ensure_vector_index, whose optimize() may already have folded new rows in.
    text_index_built = ensure_text_index(table) if text_index else False
    index_seconds = time.perf_counter() - index_started
    return ProductSync(
        total=desired.height,
        encoded=to_encode.height,
        reused=desired.height - to_encode.height,
        metadata_updated=to_rewrite.height,
        listed=int(desired["is_listed"].sum()),
        encode_seconds=encode_seconds,
        seconds=time.perf_counter() - started,
        version=table.version,
        indexed=indexed,
        text_index_built=text_index_built,
        index_seconds=index_seconds,
    )

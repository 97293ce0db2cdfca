"""LanceDB tables for vectors. Every write makes a new table version; versions are kept
so that a published recommendation snapshot can name the embedding version it used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from core.frames import vector_matrix
from core.settings import is_uri

PRODUCT_TABLE = "product_embeddings"
USER_TABLE = "user_embeddings"
# Product vectors from the search model, when it is not the recommender's (see embeddings/search.py).
SEARCH_TABLE = "product_search"
TEXT_COLUMN = "text"
# BM25 over the product text. English stemming folds plurals ("teapots" finds TEAPOT);
# ASCII folding lets "creme" find "crème"; no positions, as no phrase queries are made.
TEXT_INDEX_SETTINGS = {
    "base_tokenizer": "simple",
    "language": "English",
    "stem": True,
    "remove_stop_words": True,
    "lower_case": True,
    "ascii_folding": True,
    "with_position": False,
}


def connect(location: str | Path):
    """LanceDB at a local folder (created) or an object-store URI such as s3://bucket/prefix
    (`Paths.lancedb_uri`); LanceDB reads the store's credentials and endpoint from its standard
    environment variables, so nothing here depends on which store it is."""
    # Imported here: lancedb's import costs ~2.3 s (its REST namespace client), which loading
    # the Dagster definitions (every run, the UI's code server) should not pay.
    import lancedb

    if not is_uri(location):
        Path(location).mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(location))


def database_exists(location: str | Path) -> bool:
    """Whether there can be tables there yet, without creating anything. An object store has
    no folders to look for: it answers yes, and an empty one simply lists no tables."""
    return is_uri(location) or Path(location).is_dir()


def open_table(db, name: str):
    """The table, or None when it does not exist yet."""
    return db.open_table(name) if name in db.list_tables().tables else None


def read_table(db, name: str, columns: list[str] | None = None):
    """The table (or only `columns` of it: a million shoppers' vectors are 1.5 GB that a
    question about their timestamps need not read) as a polars frame; None when absent."""
    import polars as pl

    table = open_table(db, name)
    if table is None:
        return None
    if columns is None:
        return pl.from_arrow(table.to_arrow())
    return pl.from_arrow(table.search().select(columns).limit(None).to_arrow())


VECTOR_BATCH_ROWS = 65_536  # vectors read at a time by vector_batches (96 MB at 384 floats)


def vector_batches(db, name: str, batch_rows: int = VECTOR_BATCH_ROWS) -> Iterator[np.ndarray]:
    """The table's `vector` column as float32 matrices of at most `batch_rows` rows, read a
    batch at a time (nothing when the table is absent)."""
    import polars as pl

    table = open_table(db, name)
    if table is None:
        return
    for batch in table.search().select(["vector"]).limit(None).to_batches(batch_rows):
        if batch.num_rows:
            yield vector_matrix(pl.from_arrow(batch)["vector"])


def in_batches(rows, batch_rows: int = VECTOR_BATCH_ROWS):
    """An Arrow table as a reader of batches: LanceDB writes a reader a batch at a time, but
    copies a whole table first (+1.7 GB at the peak for half a million shoppers' vectors)."""
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=batch_rows))


def upsert(db, name: str, rows, key: str):
    """Insert or replace rows by key; create the table on first write. Returns the table."""
    table = open_table(db, name)
    if table is None:
        return db.create_table(name, rows)
    if rows.num_rows:
        table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(rows)
    return table


def has_vector_index(table) -> bool:
    return any(index.columns == ["vector"] for index in table.list_indices())


def text_index(table):
    """The full-text (BM25) index on the product text, or None."""
    return next(
        (i for i in table.list_indices() if i.index_type == "FTS" and i.columns == [TEXT_COLUMN]), None
    )


def ensure_text_index(table) -> bool:
    """A full-text index on `text` covering every row, with TEXT_INDEX_SETTINGS. Returns
    whether it was (re)built; when it is current nothing is written, so a re-run makes no
    new table version.

    Rebuilt whole rather than folded in with `optimize()`: optimize also deletes versions
    older than a week, which published snapshots still name, and a rebuild is cheap
    (100k titles in 0.25 s).
    """
    from lancedb.index import FTS

    index = text_index(table)
    if (
        index is not None
        and index.num_unindexed_rows == 0
        and all(index.index_details.get(key) == value for key, value in TEXT_INDEX_SETTINGS.items())
    ):
        return False
    table.create_index(TEXT_COLUMN, config=FTS(**TEXT_INDEX_SETTINGS), replace=True)
    return True


def ensure_vector_index(table, min_rows: int) -> bool:
    """An ANN index once the table is big enough that exact search gets slow.

    Below `min_rows` an exact scan is a few milliseconds (STACK.md: 20k × 384 in ~12 ms)
    and exact results are better. Returns whether an index exists afterwards.
    """
    from lancedb.index import IvfHnswSq

    if has_vector_index(table):
        table.optimize()  # fold rows added since the index was built into it
        return True
    rows = table.count_rows()
    if rows < min_rows:
        return False
    partitions = max(1, rows // 4096)
    table.create_index("vector", config=IvfHnswSq(distance_type="cosine", num_partitions=partitions))
    return True

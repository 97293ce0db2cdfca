"""LanceDB tables for vectors. Every write makes a new table version; versions are kept
so that a published recommendation snapshot can name the embedding version it used."""

from __future__ import annotations

from pathlib import Path

import lancedb

PRODUCT_TABLE = "product_embeddings"
USER_TABLE = "user_embeddings"


def connect(path: Path):
    path.mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(path))


def open_table(db, name: str):
    """The table, or None when it does not exist yet."""
    return db.open_table(name) if name in db.list_tables().tables else None


def read_table(db, name: str):
    """Whole table as a polars frame (None when absent)."""
    import polars as pl

    table = open_table(db, name)
    return None if table is None else pl.from_arrow(table.to_arrow())


def upsert(db, name: str, rows, key: str):
    """Insert or replace rows by key; create the table on first write. Returns the table."""
    table = open_table(db, name)
    if table is None:
        return db.create_table(name, rows)
    if rows.num_rows:
        table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(rows)
    return table


def ensure_vector_index(table, min_rows: int) -> bool:
    """An ANN index once the table is big enough that exact search gets slow.

    Below `min_rows` an exact scan is a few milliseconds (STACK.md: 20k × 384 in ~12 ms)
    and exact results are better. Returns whether an index exists afterwards.
    """
    from lancedb.index import IvfHnswSq

    if any(index.columns == ["vector"] for index in table.list_indices()):
        table.optimize()  # fold rows added since the index was built into it
        return True
    rows = table.count_rows()
    if rows < min_rows:
        return False
    partitions = max(1, rows // 4096)
    table.create_index("vector", config=IvfHnswSq(distance_type="cosine", num_partitions=partitions))
    return True

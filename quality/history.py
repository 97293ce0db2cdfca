"""`data_quality_results`: every expectation's verdict, run after run, in the warehouse.

One row per (run, suite, partition, expectation). The monitoring report reads it for pass
rates over time, so its columns are a contract: change them only together with reports/.

| column | meaning |
|---|---|
| checked_at | when the suite ran (UTC) |
| run_id | the Dagster run id (or any caller's id) |
| suite | a suite of quality/suites.py (raw_events, events, products, user_recommendations, ...) |
| expectation | GX type with its column, numeric bounds and `mostly`: the same label every run |
| column_name | the column (or comma-joined columns); null for table-level expectations |
| partition_key | the landing day checked, `first..last` for a ranged run |
| success | the expectation held |
| severity | `error` (blocks downstream / the publish) or `warn` (shown only) |
| observed_value | what GX saw, as text: a value, or "n of N rows unexpected, e.g. ..." |

Idempotent: writing a (run_id, suite, partition_key) again replaces its rows (a re-executed
check in the same run does not double-count). DuckDB has one writer per file, so each write
opens the warehouse, writes in one transaction and closes (warehouse.store.connect).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.store import connect

TABLE = "data_quality_results"

DDL = f"""
create table if not exists {TABLE} (
    checked_at      timestamp,
    run_id          varchar,
    suite           varchar,
    expectation     varchar,
    column_name     varchar,
    partition_key   varchar,
    success         boolean,
    severity        varchar,  -- 'error' | 'warn'
    observed_value  varchar
)
"""

SCHEMA = pa.schema(
    [
        ("checked_at", pa.timestamp("us")),
        ("run_id", pa.string()),
        ("suite", pa.string()),
        ("expectation", pa.string()),
        ("column_name", pa.string()),
        ("partition_key", pa.string()),
        ("success", pa.bool_()),
        ("severity", pa.string()),
        ("observed_value", pa.string()),
    ]
)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def write_results(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> int:
    """Replace the rows of every (run_id, suite, partition_key) in `rows`; returns rows written."""
    ensure_table(con)
    if not rows:
        return 0
    new = pa.Table.from_pylist(rows, schema=SCHEMA)  # noqa: F841 - referenced by name in SQL
    keys = sorted({(r["run_id"], r["suite"], r["partition_key"]) for r in rows})
    con.execute("begin transaction")
    try:
        for run_id, suite, partition_key in keys:
            con.execute(
                f"delete from {TABLE} where run_id is not distinct from ? and suite = ? "
                "and partition_key is not distinct from ?",
                [run_id, suite, partition_key],
            )
        con.execute(f"insert into {TABLE} select * from new")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(rows)


def record_rows(warehouse: Path, rows: list[dict]) -> int:
    """Open the warehouse, write, close."""
    with connect(warehouse) as con:
        return write_results(con, rows)


def read_results(con: duckdb.DuckDBPyConnection, suite: str | None = None):
    """The history as a polars frame, oldest first (empty, with the schema, when none yet)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'main' and table_name = ?",
        [TABLE],
    ).fetchall()[0][0]
    if not exists:
        import polars as pl

        return pl.from_arrow(SCHEMA.empty_table())
    where, params = ("where suite = ?", [suite]) if suite else ("", [])
    return con.sql(
        f"select * from {TABLE} {where} order by checked_at, suite, expectation", params=params
    ).pl()

"""What the warehouse holds: per table, rows, an order-independent checksum, latest partition.

The checksum of a table is the sum of per-row hashes modulo 2**64, so it does not depend
on row order and does change when a row is duplicated. `_ingested_at` (wall-clock time of
ingestion) is left out: re-ingesting the same landing files gives the same checksum.

A view's checksum is that of its definition (`checksum_of: definition`): its rows are that
definition applied to the tables it reads, whose own checksums are listed, and hashing them
means computing the view. int_events_sessionized's sessions took 17 s of every run's end at
10M events (the figures are recorded after each run), for a figure the tables already give.
"""

from __future__ import annotations

import duckdb

EXCLUDED_FROM_CHECKSUM = ("_ingested_at",)
PARTITION_COLUMNS = ("_partition_date", "landed_on")
# Run logs, not data derived from the landing files: they grow with every run (by design),
# so they would break "same landing files → same tables". Each has its own reader.
RUN_LOG_TABLES = ("data_quality_results", "monitoring_alerts", "recommendation_evaluation_history")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_status(con: duckdb.DuckDBPyConnection, name: str, kind: str) -> dict:
    columns = [
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'main' and table_name = ? order by ordinal_position",
            [name],
        ).fetchall()
    ]
    partition_column = next((c for c in PARTITION_COLUMNS if c in columns), None)
    latest = f"max({_quote(partition_column)})" if partition_column else "null"
    if kind == "view":
        # DuckDB answers a count and a max over a view without computing its other columns.
        rows, latest_partition = con.execute(f"select count(*), {latest} from {_quote(name)}").fetchone()
        (checksum,) = con.execute(
            "select hash(sql) from duckdb_views() where schema_name = 'main' and view_name = ?", [name]
        ).fetchone()
    else:
        hashed = [c for c in columns if c not in EXCLUDED_FROM_CHECKSUM]
        row_expr = "struct_pack(" + ", ".join(f"{_quote(c)} := {_quote(c)}" for c in hashed) + ")"
        rows, checksum, latest_partition = con.execute(
            f"select count(*), coalesce(sum(hash({row_expr})::hugeint), 0) % 18446744073709551616, "
            f"{latest} from {_quote(name)}"
        ).fetchone()
    return {
        "table": name,
        "kind": kind,
        "rows": rows,
        "checksum": f"{int(checksum):016x}",
        "checksum_of": "definition" if kind == "view" else "rows",
        "latest_partition": latest_partition.isoformat() if latest_partition else None,
    }


def warehouse_status(con: duckdb.DuckDBPyConnection) -> list[dict]:
    relations = con.execute(
        "select table_name, case table_type when 'VIEW' then 'view' else 'table' end "
        "from information_schema.tables where table_schema = 'main' order by table_name"
    ).fetchall()
    return [table_status(con, name, kind) for name, kind in relations if name not in RUN_LOG_TABLES]

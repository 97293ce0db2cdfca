"""The event log as Parquet files, for the `spark` dbt target, and its tables read back.

Spark cannot open the DuckDB file, so before a Spark run the run's landing days are copied
from `raw_events` to one Parquet file per landing day under Paths.lake (a pre-hook of
stg_shop__events declares that folder as Spark's `main.raw_events`). Each day's file is
replaced whole, so a rerun is idempotent, and a day with no rows leaves no file. Spark writes
its tables as Parquet too (Paths.spark_warehouse/main.db/<table>/), which DuckDB reads back:
`canonical_checksum` fingerprints a table the same way whichever engine built it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from datetime import date
from pathlib import Path

import duckdb

from core.errors import ShopguideError

SPARK_SCHEMA = "main"


class SparkUnavailable(ShopguideError, RuntimeError):
    """The `spark` target cannot start here: no Java, or pyspark / dbt-spark not installed."""


def check_spark_runtime() -> None:
    """Fail in one line, before a run, when a local Spark cannot start (dbt would fail minutes
    later with a JVM stack trace)."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else None
    if not (java and java.exists()) and shutil.which("java") is None:
        raise SparkUnavailable(
            "the spark target needs Java 17 and there is no `java` on PATH (nor JAVA_HOME): "
            "install it (scripts/install-java.sh) or use --target duckdb."
        )
    missing = [name for name in ("pyspark", "dbt.adapters.spark") if importlib.util.find_spec(name) is None]
    if missing:
        raise SparkUnavailable(
            f"the spark target needs {' and '.join(missing)}: run scripts/setup.sh "
            "(dbt-spark[session] and pyspark are pinned in pyproject.toml)."
        )


def export_event_log(con: duckdb.DuckDBPyConnection, lake: Path, days: list[date]) -> int:
    """Write raw_events of each landing day to lake/raw_events/<day>.parquet; rows written."""
    folder = lake / "raw_events"
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for day in days:
        target = folder / f"{day.isoformat()}.parquet"
        rows = con.execute("select count(*) from raw_events where _partition_date = ?", [day]).fetchone()[0]
        if rows == 0:
            target.unlink(missing_ok=True)
            continue
        # Written beside, then renamed: a reader never sees half a file. `properties` as
        # plain text (Spark reads DuckDB's JSON type only as bytes); ordered by lineage so
        # the same log gives the same file.
        partial = folder / f".{day.isoformat()}.parquet.partial"
        con.execute(
            f"copy (select * replace (cast(properties as varchar) as properties) from raw_events "
            f"where _partition_date = date '{day.isoformat()}' order by _source_file, _line_number) "
            f"to '{partial}' (format parquet)"
        )
        os.replace(partial, target)
        written += rows
    return written


def spark_table_files(spark_warehouse: Path, table: str) -> list[Path]:
    """The Parquet files of a table the `spark` target wrote (partition folders included)."""
    root = spark_warehouse / f"{SPARK_SCHEMA}.db" / table
    return sorted(p for p in root.rglob("*.parquet") if not p.name.startswith((".", "_")))


def spark_table_relation(spark_warehouse: Path, table: str) -> str | None:
    """DuckDB SQL reading a `spark` target table (None when it has no files): partition
    folders (`landed_on=2024-01-01`) come back as columns, as Spark shows them."""
    files = spark_table_files(spark_warehouse, table)
    if not files:
        return None
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    return f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"


def _canonical(name: str, type_: str) -> str:
    """One column as a value that does not depend on which engine wrote it: widths of integers
    and decimals differ between engines (a Spark sum of DECIMAL(18,4) is DECIMAL(28,4), DuckDB's
    DECIMAL(38,4)), and a double summed in another order differs in its last bits."""
    column = '"' + name.replace('"', '""') + '"'
    upper = type_.upper()
    if upper.lstrip("U") in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        return f"cast({column} as hugeint)"
    if upper.startswith("DECIMAL"):
        return f"cast({column} as decimal(38, 10))"
    if upper in ("FLOAT", "DOUBLE", "REAL"):
        return f"round(cast({column} as double), 9)"
    if upper.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('UTC', {column})"
    if upper.startswith("TIMESTAMP"):
        return f"cast({column} as timestamp)"
    if upper in ("VARCHAR", "BOOLEAN", "DATE"):
        return column
    return f"cast({column} as varchar)"


def canonical_checksum(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str, list[str]]:
    """(rows, order-independent checksum, column names) of a relation: the sum of per-row hashes
    modulo 2**64 over the columns in name order, each made engine-independent first."""
    described = con.execute(f"describe select * from {relation}").fetchall()
    columns = sorted((row[0], row[1]) for row in described)
    row_expr = "struct_pack(" + ", ".join(f'"{n}" := {_canonical(n, t)}' for n, t in columns) + ")"
    rows, checksum = con.execute(
        f"select count(*), coalesce(sum(hash({row_expr})::hugeint), 0) % 18446744073709551616 from {relation}"
    ).fetchone()
    return rows, f"{int(checksum):016x}", [n for n, _ in columns]

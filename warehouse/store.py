"""The DuckDB warehouse: connections, the event log tables, partition replacement.

DuckDB allows one writer per file and no reader beside it (see ../shared/STACK.md),
so every function here opens, does its work, and closes. Nothing holds the file
between steps of a run.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from core.errors import MissingFile, ShopguideError
from warehouse.envelope import EVENT_FIELDS

RAW_EVENTS_DDL = """
create table if not exists raw_events (
    event_id        varchar   not null,  -- idempotency key, as the producer sent it
    event_type      varchar   not null,
    occurred_at     timestamp not null,  -- UTC
    user_id         varchar,             -- null for guests
    session_id      varchar,
    product_id      varchar,
    quantity        integer,
    price           double,
    currency        varchar,
    query           varchar,
    properties      json,
    _source_file    varchar   not null,  -- lineage: landing file, relative to landing/
    _line_number    bigint    not null,  -- lineage: 1-based line (or Parquet row)
    _ingested_at    timestamp not null,  -- lineage: when this partition was (re)ingested, UTC
    _partition_date date      not null   -- lineage: the landing day
)
"""

QUARANTINED_EVENTS_DDL = """
create table if not exists quarantined_events (
    _source_file    varchar   not null,
    _line_number    bigint    not null,
    reason          varchar   not null,  -- one of warehouse.envelope.QUARANTINE_REASONS
    detail          varchar   not null,  -- human-readable: what was wrong with the line
    raw_text        varchar   not null,  -- the line as it arrived (first 4 KiB)
    _ingested_at    timestamp not null,
    _partition_date date      not null
)
"""

INGESTION_LOG_DDL = """
create table if not exists ingestion_log (
    _partition_date date      not null primary key,
    files           integer   not null,
    lines_read      bigint    not null,
    accepted        bigint    not null,
    quarantined     bigint    not null,
    _ingested_at    timestamp not null
)
"""

RAW_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("product_id", pa.string()),
        ("quantity", pa.int32()),
        ("price", pa.float64()),
        ("currency", pa.string()),
        ("query", pa.string()),
        ("properties", pa.string()),
        ("_source_file", pa.string()),
        ("_line_number", pa.int64()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("_source_file", pa.string()),
        ("_line_number", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_text", pa.string()),
    ]
)


class WarehouseBusy(ShopguideError, RuntimeError):
    """Another process holds the DuckDB file (see `describe_holder` for who)."""


# How long a writer keeps trying when another process has the file open. Readers (status,
# a report, someone's DuckDB shell) hold it for a moment; a run's step failing because one
# of them was reading at the wrong second is what this wait prevents. Past it, the holder
# is named and the writer gives up.
WRITER_WAIT_S = 15.0
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


def process_command(pid: int) -> str | None:
    """A process's command line (Linux /proc), or None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or None


def describe_holder(duckdb_message: str) -> str:
    """`PID 123 (shopguide status)` from DuckDB's lock message, which names the holder's PID
    and only its executable (`python3.11` tells nothing)."""
    found = _LOCK_HOLDER.search(duckdb_message)
    if found is None:
        return "another process"
    pid = int(found.group(1))
    if pid == os.getpid():
        return f"this very process (PID {pid}: a connection left open, a bug)"
    command = process_command(pid)
    return f"PID {pid} ({command})" if command else f"PID {pid}"


def _open(path: Path, read_only: bool, wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, with a bounded wait for writers (readers never wait by default: they
    have other sources while a run writes, and must not queue in front of it)."""
    wait = (0.0 if read_only else WRITER_WAIT_S) if wait is None else wait
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            message = str(error)
            if "lock" not in message.lower():
                raise
            holder = describe_holder(message)
            if holder.startswith("this very process") or time.monotonic() >= deadline:
                waited = f" (waited {wait:g} s)" if wait else ""
                raise WarehouseBusy(
                    f"The warehouse {path} is in use by {holder}{waited}. Wait for it to finish "
                    "(or stop it) and try again."
                ) from error
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextlib.contextmanager
def connect(
    path: Path, *, read_only: bool = False, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file; `wait` overrides how long to wait for another
    process's lock (a writer waits WRITER_WAIT_S, a reader not at all)."""
    if read_only and not path.exists():
        raise MissingFile(f"No warehouse at {path}. Run `shopguide demo` or `shopguide run --date D` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, wait)
    try:
        yield con
    finally:
        con.close()


def ensure_event_log(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in (RAW_EVENTS_DDL, QUARANTINED_EVENTS_DDL, INGESTION_LOG_DDL):
        con.execute(ddl)


def events_table(rows: list[dict]) -> pa.Table:
    """The per-line path's accepted rows (dicts) as the columns the warehouse stores."""
    columns = {name: [] for name in RAW_EVENTS_SCHEMA.names}
    for row in rows:
        for name in EVENT_FIELDS[:-1]:  # all but properties, stored as JSON text below
            columns[name].append(row[name])
        props = row["properties"]
        columns["properties"].append(None if props is None else orjson.dumps(props).decode())
        columns["_source_file"].append(row["source_file"])
        columns["_line_number"].append(row["line_number"])
    return pa.table(columns, schema=RAW_EVENTS_SCHEMA)


def _quarantine_table(rows: list[dict]) -> pa.Table:
    return pa.table(
        {
            "_source_file": [r["source_file"] for r in rows],
            "_line_number": [r["line_number"] for r in rows],
            "reason": [r["reason"] for r in rows],
            "detail": [r["detail"] for r in rows],
            "raw_text": [r["raw_text"] for r in rows],
        },
        schema=QUARANTINE_SCHEMA,
    )


def replace_partition(
    con: duckdb.DuckDBPyConnection,
    day: date,
    accepted,
    quarantined: list[dict],
    files: int,
) -> datetime:
    """Replace exactly one landing day in the event log, atomically.

    The append-only log is append-only per landing day: re-ingesting a day swaps
    that day's rows for a fresh read of the same files, and touches no other day.
    `accepted` is a list of row dicts or anything with `to_arrow()` (warehouse.accepted).
    """
    ensure_event_log(con)
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    # Referenced by name in the SQL below.
    events = accepted.to_arrow() if hasattr(accepted, "to_arrow") else events_table(accepted)  # noqa: F841
    bad = _quarantine_table(quarantined)  # noqa: F841
    con.execute("begin transaction")
    try:
        con.execute("delete from raw_events where _partition_date = ?", [day])
        con.execute("delete from quarantined_events where _partition_date = ?", [day])
        con.execute("delete from ingestion_log where _partition_date = ?", [day])
        con.execute(
            """
            insert into raw_events
            select event_id, event_type, occurred_at, user_id, session_id, product_id, quantity,
                   price, currency, query, properties::json, _source_file, _line_number,
                   ?::timestamp, ?::date
            from events
            """,
            [ingested_at, day],
        )
        con.execute(
            "insert into quarantined_events select *, ?::timestamp, ?::date from bad",
            [ingested_at, day],
        )
        con.execute(
            "insert into ingestion_log values (?, ?, ?, ?, ?, ?)",
            [day, files, len(accepted) + len(quarantined), len(accepted), len(quarantined), ingested_at],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return ingested_at


def partition_counts(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, int]:
    """What the warehouse holds for one landing day, counted from the tables themselves."""
    ensure_event_log(con)
    accepted = con.execute("select count(*) from raw_events where _partition_date = ?", [day]).fetchone()[0]
    quarantined = con.execute(
        "select count(*) from quarantined_events where _partition_date = ?", [day]
    ).fetchone()[0]
    logged = con.execute("select lines_read from ingestion_log where _partition_date = ?", [day]).fetchone()
    return {
        "accepted": accepted,
        "quarantined": quarantined,
        "lines_read": logged[0] if logged else 0,
    }


def replace_rows(con: duckdb.DuckDBPyConnection, table: str, where: str, params: list, rows: pa.Table) -> int:
    """Swap the rows of `table` matching `where` for `rows`, atomically: how a run log
    (data-quality results, alerts, evaluation history) stays idempotent per run."""
    con.register("_incoming_rows", rows)
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {table} where {where}", params)
        if rows.num_rows:
            con.execute(f"insert into {table} by name select * from _incoming_rows")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_incoming_rows")
    return rows.num_rows

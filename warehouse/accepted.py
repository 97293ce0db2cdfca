"""The accepted rows of a landing day, kept columnar.

The fast path hands over Arrow tables (half a million rows as Python dicts cost seconds to
build and seconds more to turn back into columns for the warehouse); the per-line path
hands over dicts. `AcceptedRows` holds both and reads as the list of dicts the per-line
path always gave (`len`, iteration, `+`), so callers and tests need not know which road a
row took; the warehouse write takes `to_arrow()` without any per-row step.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pyarrow as pa

from warehouse.store import RAW_EVENTS_SCHEMA, events_table


class AcceptedRows:
    def __init__(self) -> None:
        self.tables: list[pa.Table] = []  # in RAW_EVENTS_SCHEMA
        self.rows: list[dict] = []  # as `validate_event` returns them, plus source_file, line_number

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def __len__(self) -> int:
        return sum(table.num_rows for table in self.tables) + len(self.rows)

    def to_arrow(self) -> pa.Table:
        return pa.concat_tables([*self.tables, events_table(self.rows)]).combine_chunks()

    def __iter__(self) -> Iterator[dict]:
        """Every row as a dict, in file and line order (a convenience for small days: tests,
        tools; the warehouse write uses `to_arrow`)."""
        rows = [as_row(record) for table in self.tables for record in table.to_pylist()] + self.rows
        return iter(sorted(rows, key=lambda row: (row["source_file"], row["line_number"])))

    def __add__(self, other: list) -> list:
        return list(self) + list(other)


def as_row(record: dict) -> dict:
    """One Arrow record of RAW_EVENTS_SCHEMA as the per-line path's row dict."""
    row = {name: record[name] for name in RAW_EVENTS_SCHEMA.names if not name.startswith("_")}
    if row["properties"] is not None:
        row["properties"] = orjson.loads(row["properties"])
    row["source_file"] = record["_source_file"]
    row["line_number"] = record["_line_number"]
    return row

"""Property-based: no landing line or Parquet row, of any shape or type, crashes a landing day,
and every line read is accounted for, down to the warehouse write."""

from __future__ import annotations

import json
import string
import tempfile
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from warehouse.envelope import EVENT_TYPES, QUARANTINE_REASONS
from warehouse.ingest import ingest_landing_day
from warehouse.store import partition_counts, replace_partition

DAY = date(2024, 3, 10)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values a producer might send. Each field is usually valid and sometimes anything, so that
# examples get past the first checks and reach the later ones (properties, the write).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(_offset)
# The ends of Python's datetime range, where an offset of almost a day pushes UTC out of it.
extreme_times = st.one_of(
    st.datetimes(min_value=datetime(9999, 12, 31, 0, 1)).map(lambda t: t.replace(tzinfo=_offset(-1439))),
    st.datetimes(max_value=datetime(1, 1, 1, 23, 58)).map(lambda t: t.replace(tzinfo=_offset(1439))),
)
valid_ids = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)
valid = {
    "event_id": valid_ids,
    "event_type": st.sampled_from(EVENT_TYPES),
    "occurred_at": st.builds(
        lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
        st.datetimes(datetime(2024, 3, 1), datetime(2024, 3, 11)),
        offsets,
    ),
    "user_id": valid_ids,
    "session_id": valid_ids,
    "product_id": valid_ids,
    "quantity": st.integers(min_value=1, max_value=5),
    "price": st.floats(min_value=0, max_value=100),
    "currency": st.sampled_from(["EUR", "gbp"]),
    "query": st.text(string.ascii_letters + " ", min_size=1, max_size=12),
    "properties": st.dictionaries(
        st.sampled_from(["country", "title", "merchandise", "category"]) | st.text(max_size=6),
        json_values,
        max_size=4,
    ),
}
wild = {
    **dict.fromkeys(valid, json_values),
    "occurred_at": st.one_of(
        extreme_times.map(datetime.isoformat),
        st.builds(lambda moment, tz: moment.replace(tzinfo=tz).isoformat(), st.datetimes(), offsets),
        st.text(max_size=30),
    ),
    **dict.fromkeys(["event_id", "user_id", "session_id", "product_id", "query"], st.text(max_size=140)),
}


@st.composite
def field(draw, name: str):
    """Mostly valid, sometimes anything of any type."""
    return draw(wild[name] if draw(st.sampled_from(range(5))) == 0 else valid[name])


@st.composite
def envelopes(draw) -> dict:
    """An object with most of the envelope's fields and perhaps some unknown keys."""
    record = {name: draw(field(name)) for name in valid if draw(st.sampled_from(range(10))) > 0}
    record.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return record


def _with_duplicate_key(record: dict) -> bytes:
    text = json.dumps(record)
    if not record:
        return text.encode()
    key = next(iter(record))
    return ("{" + json.dumps(key) + ": 1, " + text[1:]).encode()


json_lines = st.one_of(
    envelopes().map(lambda record: json.dumps(record).encode()),
    envelopes().map(lambda record: json.dumps(record, separators=(",", ":")).encode()),
    envelopes().map(lambda record: json.dumps(record, ensure_ascii=False).encode()),
    envelopes().map(_with_duplicate_key),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
).map(lambda line: line.replace(b"\n", b" "))  # one record per line, as a producer writes it


def _count_lines(result, file: str) -> int:
    return sum(1 for row in result.accepted + result.quarantined if row["source_file"] == file)


def _ingest_and_store(root: Path, con) -> object:
    result = ingest_landing_day(root, DAY)
    assert {row["reason"] for row in result.quarantined} <= set(QUARANTINE_REASONS)
    replace_partition(con, DAY, result.accepted, result.quarantined, len(result.files))
    assert partition_counts(con, DAY) == {
        "accepted": len(result.accepted),
        "quarantined": len(result.quarantined),
        "lines_read": result.lines_read,
    }
    return result


@pytest.fixture(scope="module")
def warehouse():
    with duckdb.connect() as con:
        yield con


KNOWN_CRASH = {
    "event_id": "e",
    "event_type": "view",
    "product_id": "P",
    "occurred_at": "9999-12-31T23:00:00-05:00",
}


@SETTINGS
@given(lines=st.lists(json_lines, min_size=1, max_size=8))
@example(lines=[json.dumps(KNOWN_CRASH).encode()])  # once an OverflowError: always tried
def test_any_json_lines_are_accepted_or_quarantined(warehouse, lines):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / DAY.isoformat()).mkdir()
        (root / DAY.isoformat() / "fuzz.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        result = _ingest_and_store(root, warehouse)
    assert _count_lines(result, "2024-03-10/fuzz.jsonl") == len(lines)
    assert not any(q["reason"] == "unreadable_file" for q in result.quarantined)


# Parquet columns are typed: each column gets one Arrow type, drawn from those a producer's
# export may hold, so rows carry binary, decimal, dates, structs and lists where the
# envelope expects text.
parquet_scalars = {
    "text": st.text(max_size=12),
    "binary": st.binary(max_size=8),
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(),
    "bool": st.booleans(),
    "decimal": st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
    "timestamp": st.datetimes(),
    "date": st.dates(),
}


PROPERTY_NAMES = st.sampled_from(["country", "title", "merchandise", "a", "b"])


@st.composite
def parquet_kinds(draw, depth: int = 0, struct: bool = False) -> tuple:
    """A column type: ("scalar", name), ("list", kind) or ("struct", {field: kind})."""
    kinds = ["scalar"] + (["struct", "list"] if depth < 2 else [])
    kind = "struct" if struct else draw(st.sampled_from(kinds))
    if kind == "struct":
        names = draw(st.lists(PROPERTY_NAMES, min_size=1, max_size=3, unique=True))
        return ("struct", {name: draw(parquet_kinds(depth + 1)) for name in names})
    if kind == "list":
        return ("list", draw(parquet_kinds(depth + 1)))
    return ("scalar", draw(st.sampled_from(sorted(parquet_scalars))))


def parquet_values(kind: tuple) -> st.SearchStrategy:
    shape, detail = kind
    if shape == "struct":
        return st.fixed_dictionaries({name: parquet_values(sub) for name, sub in detail.items()})
    if shape == "list":
        return st.lists(parquet_values(detail), max_size=3)
    return parquet_scalars[detail] | st.none()


@st.composite
def parquet_tables(draw) -> pa.Table:
    rows = draw(st.integers(1, 4))
    columns = {}
    for name in valid:
        dice = draw(st.sampled_from(range(20)))
        if dice == 0:
            continue  # the column is absent
        if dice < 3 + 2 * (name == "properties"):  # a column of any type
            kind = draw(parquet_kinds())
        elif name == "properties":  # a struct, as the landing contract asks, of any fields
            kind = draw(parquet_kinds(struct=True))
        else:  # a column of valid values, typed as they come (text, integers, floats)
            columns[name] = pa.array(draw(st.lists(valid[name], min_size=rows, max_size=rows)))
            continue
        columns[name] = pa.array(draw(st.lists(parquet_values(kind), min_size=rows, max_size=rows)))
    if not columns:
        columns["event_id"] = pa.array(["only"] * rows)
    return pa.table(columns)


@SETTINGS
@given(table=parquet_tables())
@example(  # once a TypeError at the warehouse write: always tried
    table=pa.table(
        {
            "event_id": ["b", "d"],
            "event_type": ["view", "view"],
            "occurred_at": ["2024-03-10T10:00:00Z"] * 2,
            "product_id": ["P", "P"],
            "properties": [{"x": b"\xff", "y": None}, {"x": None, "y": Decimal("1.5")}],
        }
    )
)
def test_any_parquet_rows_are_accepted_or_quarantined(warehouse, table):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / DAY.isoformat()).mkdir()
        pq.write_table(table, root / DAY.isoformat() / "fuzz.parquet")
        result = _ingest_and_store(root, warehouse)
    assert _count_lines(result, "2024-03-10/fuzz.parquet") == table.num_rows
    assert not any(q["reason"] == "unreadable_file" for q in result.quarantined)
    assert Counter(row["line_number"] for row in result.accepted + result.quarantined) == Counter(
        range(1, table.num_rows + 1)
    )

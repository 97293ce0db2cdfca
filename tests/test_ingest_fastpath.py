"""The vectorised ingest gives exactly what the per-line path gives (issue 15): the same
accepted rows, column for column, the same quarantined rows with the same reasons, the same
line accounting, and the same warehouse contents; on the malformed corpus, on lines aimed at
each guard of the fast path, on a synthetic shop, and on any lines hypothesis draws."""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopguide.sources.synthetic import SyntheticConfig, generate
from tests.test_ingest import DAY, good, write_day
from tests.test_ingest_properties import json_lines, valid
from warehouse import ingest
from warehouse.ingest import (
    FastPathMismatch,
    ingest_landing_day,
    ingest_landing_day_per_line,
    ingest_landing_days,
)
from warehouse.landing import landing_days
from warehouse.store import events_table, replace_partition

SORT = [("_source_file", "ascending"), ("_line_number", "ascending")]


def fast_rows(result) -> int:
    return sum(table.num_rows for table in result.accepted.tables)


def assert_same(fast, reference) -> None:
    assert fast.files == reference.files
    assert fast.lines_read == reference.lines_read
    # Arrow tables compare types and values exactly: the properties text, timestamps to the
    # microsecond, -0.0, integers against floats.
    assert fast.accepted.to_arrow().sort_by(SORT).equals(events_table(reference.accepted).sort_by(SORT))
    assert fast.quarantined == reference.quarantined  # reasons, details, raw text, order
    assert list(fast.accepted) == sorted(
        reference.accepted, key=lambda row: (row["source_file"], row["line_number"])
    )


def stored(result, day: date) -> tuple[list, list, list]:
    with duckdb.connect() as con:
        replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
        events = con.execute(
            "select * exclude (_ingested_at) from raw_events order by _source_file, _line_number"
        ).fetchall()
        quarantined = con.execute(
            "select * exclude (_ingested_at) from quarantined_events order by _source_file, _line_number"
        ).fetchall()
        log = con.execute("select * exclude (_ingested_at) from ingestion_log").fetchall()
    return events, quarantined, log


def test_the_malformed_corpus_gives_the_same_rows_and_reasons_both_ways(tmp_path):
    write_day(tmp_path)
    fast, reference = ingest_landing_day(tmp_path, DAY), ingest_landing_day_per_line(tmp_path, DAY)
    assert_same(fast, reference)
    assert fast_rows(fast) == 4  # a1, a4, g1, g2: the Parquet row p1 is decided line by line
    assert stored(fast, DAY) == stored(reference, DAY)


# Lines aimed at the fast path's guards and at the per-line rules it mirrors: each is either
# accepted by both roads with the same row, or quarantined by the per-line path.
EDGE_CASES = [
    good("plain"),
    good("crlf"),  # written with "\r\n" below
    {**good("int-ids"), "user_id": 42, "session_id": -7},
    {**good("spaces"), "user_id": " u1 "},
    {**good("inner space"), "user_id": "u 1"},
    {**good("empty"), "user_id": ""},
    {**good("tab"), "user_id": "u\t1"},
    {**good("non-ascii"), "user_id": "utilisateur-é"},
    {**good("zero-width"), "user_id": "u\u200b1"},
    {**good("x" * 128)},
    {**good("x" * 129)},
    {**good("type-case"), "event_type": " VIEW "},
    {**good("type-kelvin"), "event_type": "\u212aview"},
    {**good("ms"), "occurred_at": "2024-03-10T09:00:00.123Z"},
    {**good("us"), "occurred_at": "2024-03-10T09:00:00.123456+01:00"},
    {**good("ns"), "occurred_at": "2024-03-10T09:00:00.123456789Z"},
    {**good("one-digit"), "occurred_at": "2024-03-10T09:00:00.1Z"},
    {**good("space-t"), "occurred_at": "2024-03-10 09:00:00Z"},
    {**good("lower-z"), "occurred_at": "2024-03-10T09:00:00z"},
    {**good("no-colon-offset"), "occurred_at": "2024-03-10T09:00:00+0100"},
    {**good("leap"), "occurred_at": "2024-03-10T23:59:60Z"},
    {**good("hour24"), "occurred_at": "2024-03-10T24:00:00Z"},
    {**good("feb30"), "occurred_at": "2024-02-30T09:00:00Z"},
    {**good("edge-late"), "occurred_at": "2024-03-12T00:00:00Z"},
    {**good("edge-too-late"), "occurred_at": "2024-03-12T00:00:00.001Z"},
    {**good("edge-early"), "occurred_at": "2000-01-01T00:00:00Z"},
    {**good("edge-too-early"), "occurred_at": "1999-12-31T23:59:59+00:00"},
    {**good("offset-far"), "occurred_at": "2024-03-11T23:30:00-23:59"},
    {**good("q"), "event_type": "purchase", "quantity": 3, "price": 2.5, "currency": "gbp"},
    {**good("q0"), "event_type": "purchase", "quantity": 0},
    {**good("q-float"), "event_type": "purchase", "quantity": 2.0},
    {**good("q-half"), "event_type": "purchase", "quantity": 2.5},
    {**good("q-bool"), "event_type": "purchase", "quantity": True},
    {**good("q-big"), "quantity": 1_000_001},
    {**good("q-neg-view"), "quantity": -1_000_000},
    {**good("price-int"), "price": 3},
    {**good("price-neg"), "price": -0.01},
    {**good("price-neg-zero"), "price": -0.0},
    {**good("price-big"), "price": 1_000_000.5},
    {**good("price-str"), "price": "2.5"},
    {**good("currency-long"), "currency": "EURO"},
    {**good("currency-int"), "currency": 978},
    {**good("search"), "event_type": "search", "product_id": None, "query": "red shoes"},
    {**good("search-blank"), "event_type": "search", "product_id": None, "query": "\u3000"},
    {**good("search-padded"), "event_type": "search", "product_id": None, "query": "shoes\u00a0"},
    {**good("search-newline"), "event_type": "search", "product_id": None, "query": "a\nb"},
    {**good("search-long"), "event_type": "search", "product_id": None, "query": "q" * 500},
    {**good("search-none"), "event_type": "search", "product_id": None},
    {**good("no-product"), "product_id": None},
    {
        **good("catalog"),
        "event_type": "product_upserted",
        "properties": {"title": "Mug", "merchandise": True},
    },
    {**good("props-int-title"), "properties": {"title": 12, "n": 2**64 - 1, "m": -(2**63)}},
    {**good("props-bool-title"), "properties": {"title": True}},
    {**good("props-str-flag"), "properties": {"merchandise": "yes"}},
    {**good("props-nested"), "properties": {"a": {"b": [1, 2.5]}}},
    {**good("props-float"), "properties": {"a": 1e16, "b": 0.1}},
    {**good("props-empty"), "properties": {}},
    {**good("props-list"), "properties": [1]},
    {**good("props-text"), "properties": "x"},
    {**good("props-null-title"), "properties": {"title": None}},
    {**good("props-escapes"), "properties": {"title": 'say "hi" \\ / \n \t \x01 \x7f'}},
    {**good("props-quotes"), "properties": {"title": '12" "LP" \\ back/slash'}},
    {**good("props-unicode"), "properties": {"title": "café \u2028 \U0001f600"}},
    {**good("extra-key"), "extra": 1},
    {**good("recommendation"), "event_type": "recommendation_clicked", "properties": {"rank": 1}},
    ["not", "an", "object"],
]
RAW_EDGE_CASES = [
    b"",
    b"   ",
    b"\r",
    b"{}",
    b'{"event_id":"trailing","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P",}',
    b'{"event_id":"nan","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P","price":NaN}',
    b'{"event_id":"inf","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P","price":1e400}',
    b'{"event_id":"big","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P","quantity":99999999999999999999}',
    b'{"event_id":"exp","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P","price":1E2}',
    b'{"event_id":"negzero","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P","quantity":-0}',
    b'{"event_id":"dup","event_id":"dup2","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P"}',
    b'{"event_id":"dup-props","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P",'
    b'"properties":{"a":1,"a":1}}',
    b'{"event_id":"\\u0061scii","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P"}',
    b'{"event_id":"surrogate\\ud800","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P"}',
    b'{"event_id":"slash\\/","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P",'
    b'"properties":{"url":"a\\/b"}}',
    b'{"event_id":"nul\x00","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P"}',
    b'{"event_id":"latin1","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"caf\xe9"}',
    b'{"event_id":"comment" /* x */,"event_type":"view","occurred_at":"2024-03-10T09:00:00Z",'
    b'"product_id":"P"}',
    b'\xef\xbb\xbf{"event_id":"bom","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P"}',
    b'  {"event_id":"padded","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P"}  \t',
    b'{"event_id":"oversized","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P",'
    b'"properties":{"title":"' + b"x" * 70_000 + b'"}}',
]


def test_lines_aimed_at_each_guard_give_the_same_rows_and_reasons_both_ways(tmp_path):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    lines = [orjson.dumps(record) for record in EDGE_CASES] + RAW_EDGE_CASES
    (folder / "edge.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "crlf.jsonl").write_bytes(b"\r\n".join(lines) + b"\r\r\n")
    (folder / "no-final-newline.jsonl").write_bytes(b"\n".join(lines))
    with gzip.open(folder / "edge.jsonl.gz", "wb") as handle:
        handle.write(b"\n".join(lines))
    fast, reference = ingest_landing_day(tmp_path, DAY), ingest_landing_day_per_line(tmp_path, DAY)
    assert_same(fast, reference)
    assert fast.lines_read == 4 * len(lines)
    assert fast_rows(fast) >= 4 * 20  # the plain ones took the fast path
    assert len(fast.quarantined) > 4 * 40  # and the bad ones were still refused
    assert stored(fast, DAY) == stored(reference, DAY)


def test_a_synthetic_shop_gives_the_same_rows_and_reasons_both_ways(tmp_path):
    config = SyntheticConfig(
        events=4000, seed=3, days=4, late_share=0.05, duplicate_share=0.02, malformed_share=0.05
    )
    generate(tmp_path, config)
    days = landing_days(tmp_path)
    # A batch of one line: every day its own query; the default: all days in one query.
    for batch_lines in (1, 10**9):
        reasons = set()
        for day, fast in ingest_landing_days(tmp_path, days, batch_lines=batch_lines):
            reference = ingest_landing_day_per_line(tmp_path, day)
            assert_same(fast, reference)
            assert fast_rows(fast) > 0.8 * reference.lines_read
            reasons |= set(reference.reasons())
        # The generator's five kinds of bad line were all in it.
        assert reasons >= {
            "malformed_json",
            "unknown_event_type",
            "missing_field",
            "bad_timestamp",
            "not_utf8",
        }


# Envelopes whose every field is drawn valid (but not always present), so that many examples
# reach the fast path's acceptance and not only the per-line path's refusals.
valid_lines = st.fixed_dictionaries({}, optional=valid).map(
    lambda record: json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(json_lines | valid_lines, min_size=1, max_size=12))
def test_any_lines_give_the_same_rows_and_reasons_both_ways(lines):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / DAY.isoformat()).mkdir()
        (root / DAY.isoformat() / "fuzz.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        assert_same(ingest_landing_day(root, DAY), ingest_landing_day_per_line(root, DAY))


def test_days_in_one_batch_keep_their_own_windows(tmp_path):
    # The same line lands on two days; the window of the earlier day refuses it.
    late = good("next-day", occurred_at=(DAY + timedelta(days=2)).isoformat() + "T12:00:00Z")
    for day in (DAY, DAY + timedelta(days=1)):
        (tmp_path / day.isoformat()).mkdir()
        (tmp_path / day.isoformat() / "a.jsonl").write_bytes(orjson.dumps(late) + b"\n")
    results = dict(ingest_landing_days(tmp_path, [DAY, DAY + timedelta(days=1)]))
    assert results[DAY].reasons() == {"timestamp_out_of_range": 1}
    assert [row["event_id"] for row in results[DAY + timedelta(days=1)].accepted] == ["next-day"]


def test_a_fast_path_that_disagrees_with_the_per_line_path_fails_the_run(tmp_path, monkeypatch):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(orjson.dumps(good("a1")) + b"\n" + orjson.dumps(good("a2")) + b"\n")
    real = ingest.fast_accept

    def wrong(con, lines):
        table = real(con, lines)
        return table.set_column(
            table.schema.get_field_index("event_type"),
            "event_type",
            pa.array(["purchase"] * table.num_rows),
        )

    monkeypatch.setattr(ingest, "fast_accept", wrong)
    with pytest.raises(FastPathMismatch, match="a.jsonl line 1"):
        ingest_landing_day(tmp_path, DAY)

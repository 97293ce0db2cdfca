import gzip
import os
from datetime import date
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.ingest import ingest_landing_day
from warehouse.store import connect, partition_counts, replace_partition

DAY = date(2024, 3, 10)


def good(event_id: str, **extra) -> dict:
    record = {
        "event_id": event_id,
        "event_type": "view",
        "occurred_at": "2024-03-10T09:00:00Z",
        "user_id": "u1",
        "session_id": "s1",
        "product_id": "P1",
    }
    record.update(extra)
    return record


def write_day(landing, day=DAY):
    folder = landing / day.isoformat()
    folder.mkdir(parents=True)
    lines = [
        orjson.dumps(good("a1")),
        b"{not json",
        b'"just a string"',
        orjson.dumps(good("a2", event_type="teleport")),
        orjson.dumps({"event_type": "view"}),
        b'{"event_id": "bad-bytes", "query": "\xff\xfe"}',
        b'{"event_id": "' + b"x" * 70_000 + b'"}',
        orjson.dumps(good("a3", occurred_at="1999-12-31T23:59:59Z")),
        orjson.dumps(good("a4", occurred_at="2024-03-09T23:00:00-05:00")),  # 04:00Z on the 10th
    ]
    (folder / "tracker.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with gzip.open(folder / "export.jsonl.gz", "wb") as handle:
        handle.write(orjson.dumps(good("g1")) + b"\n" + orjson.dumps(good("g2")) + b"\n")
    table = pa.table(
        {
            "event_id": ["p1", "p2"],
            "event_type": ["purchase", "purchase"],
            "occurred_at": ["2024-03-10T10:00:00Z"] * 2,
            "product_id": ["P1", "P2"],
            "quantity": [1, -1],
            "price": [2.5, 2.5],
        }
    )
    pq.write_table(table, folder / "shop.parquet")
    (folder / "notes.txt").write_text("not a landing file: ignored")
    (folder / ".shop.jsonl.tmp").write_text("a producer's half-written file: ignored")


def test_every_line_is_accepted_or_quarantined_with_a_reason(tmp_path):
    write_day(tmp_path)
    result = ingest_landing_day(tmp_path, DAY)
    assert result.files == [
        "2024-03-10/export.jsonl.gz",
        "2024-03-10/shop.parquet",
        "2024-03-10/tracker.jsonl",
    ]
    assert result.lines_read == 13
    assert sorted(r["event_id"] for r in result.accepted) == ["a1", "a4", "g1", "g2", "p1"]
    assert result.reasons() == {
        "invalid_value": 1,  # parquet row with quantity -1
        "malformed_json": 1,
        "missing_field": 1,
        "not_an_object": 1,
        "not_utf8": 1,
        "oversized": 1,
        "timestamp_out_of_range": 1,
        "unknown_event_type": 1,
    }
    bad_json = next(q for q in result.quarantined if q["reason"] == "malformed_json")
    assert bad_json["raw_text"] == "{not json"
    assert (bad_json["source_file"], bad_json["line_number"]) == ("2024-03-10/tracker.jsonl", 2)
    assert len(next(q for q in result.quarantined if q["reason"] == "oversized")["raw_text"]) == 4096


def test_replacing_a_partition_touches_no_other_day(tmp_path):
    write_day(tmp_path)
    other = date(2024, 3, 11)
    (tmp_path / other.isoformat()).mkdir()
    (tmp_path / other.isoformat() / "t.jsonl").write_bytes(
        orjson.dumps(good("b1", occurred_at="2024-03-11T09:00:00Z")) + b"\n"
    )
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        for day in (DAY, other):
            result = ingest_landing_day(tmp_path, day)
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
        before = con.execute("select * exclude (_ingested_at) from raw_events order by all").fetchall()
        result = ingest_landing_day(tmp_path, DAY)
        replace_partition(con, DAY, result.accepted, result.quarantined, len(result.files))
        after = con.execute("select * exclude (_ingested_at) from raw_events order by all").fetchall()
        assert before == after
        assert partition_counts(con, DAY) == {"accepted": 5, "quarantined": 8, "lines_read": 13}
        assert partition_counts(con, other) == {"accepted": 1, "quarantined": 0, "lines_read": 1}
        occurred = con.execute("select occurred_at from raw_events where event_id = 'a4'").fetchone()[0]
        assert occurred.isoformat() == "2024-03-10T04:00:00"


def test_an_empty_landing_day_is_recorded_as_zero_lines(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        result = ingest_landing_day(tmp_path, DAY)
        replace_partition(con, DAY, result.accepted, result.quarantined, len(result.files))
        assert partition_counts(con, DAY) == {"accepted": 0, "quarantined": 0, "lines_read": 0}


def test_a_truncated_gzip_keeps_its_readable_lines_and_quarantines_the_rest(tmp_path):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    body = b"".join(orjson.dumps(good(f"t{i}")) + b"\n" for i in range(200))
    (folder / "cut.jsonl.gz").write_bytes(gzip.compress(body)[:-40])
    (folder / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    result = ingest_landing_day(tmp_path, DAY)
    unreadable = [q for q in result.quarantined if q["reason"] == "unreadable_file"]
    assert {q["source_file"] for q in unreadable} == {"2024-03-10/cut.jsonl.gz", "2024-03-10/broken.parquet"}
    assert len(result.accepted) >= 150  # what could be read stands
    details = {q["source_file"].split("/")[1]: q["detail"] for q in unreadable}
    assert details["cut.jsonl.gz"].startswith("EOFError")
    assert "magic bytes" in details["broken.parquet"]
    assert result.lines_read == len(result.accepted) + len(result.quarantined)


def test_hostile_files_are_quarantined_and_the_rest_of_the_day_loads(tmp_path):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(orjson.dumps(good("ok")) + b"\n")
    (folder / "clock.jsonl").write_bytes(
        orjson.dumps(good("late", occurred_at="9999-12-31T23:00:00-05:00"))
        + b"\n"
        + orjson.dumps(good("early", occurred_at="0001-01-01T00:00:00+05:00"))
        + b"\n"
    )
    parquet_row = {
        "event_id": ["b1"],
        "event_type": ["view"],
        "occurred_at": ["2024-03-10T10:00:00Z"],
        "product_id": ["P1"],
    }
    pq.write_table(
        pa.table({**parquet_row, "properties": pa.array([{"blob": b"\xff\x00"}])}), folder / "b.parquet"
    )
    pq.write_table(
        pa.table({**parquet_row, "properties": pa.array([{"amount": Decimal("1.50")}])}), folder / "d.parquet"
    )
    # A name that is not UTF-8 (Latin-1 "é"): os.fsdecode keeps the byte as a lone surrogate.
    (folder / os.fsdecode(b"caf\xe9.jsonl")).write_bytes(orjson.dumps(good("named")) + b"\n")

    result = ingest_landing_day(tmp_path, DAY)
    assert [row["event_id"] for row in result.accepted] == ["ok"]
    assert result.reasons() == {"timestamp_out_of_range": 2, "unreadable_file": 1, "wrong_type": 2}
    assert result.lines_read == 6
    unreadable = next(q for q in result.quarantined if q["reason"] == "unreadable_file")
    assert unreadable["source_file"] == "2024-03-10/caf\\xe9.jsonl"
    assert "not valid UTF-8" in unreadable["detail"]
    with connect(tmp_path / "w.duckdb") as con:  # the warehouse write is where two of these crashed
        replace_partition(con, DAY, result.accepted, result.quarantined, len(result.files))
        assert partition_counts(con, DAY) == {"accepted": 1, "quarantined": 5, "lines_read": 6}
        stored = con.execute("select _source_file from quarantined_events order by all").fetchall()
        assert ("2024-03-10/caf\\xe9.jsonl",) in stored


@pytest.mark.parametrize(
    "line",
    [
        b'{"event_id":"d1","event_id":"d2","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P1"}',
        b'{"event_id": "d1", "event_type": "view", "occurred_at": "2024-03-10T09:00:00Z", '
        b'"product_id": "P1", "product_id": "P2"}',
        b'{"event_id":"d1","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P1",'
        b'"properties":{"country":"FR","country":"DE"}}',
        # A \\u escape can hide a colon from a byte count: this one takes the exact path.
        b'{"event_id":"d1","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P1",'
        b'"user_id":"a","user_id":"b","query":"\\u003a"}',
    ],
    ids=["top-level", "spaced", "nested", "unicode-escape"],
)
def test_a_duplicated_key_is_malformed_json(tmp_path, line):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    (folder / "dup.jsonl").write_bytes(line + b"\n")
    result = ingest_landing_day(tmp_path, DAY)
    assert result.reasons() == {"malformed_json": 1}
    assert "duplicate key" in result.quarantined[0]["detail"]


@pytest.mark.parametrize(
    "line",
    [
        b'{"event_id" : "d1",\t"event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P:1",'
        b'"query":"a:b::c","properties":{"note":"x:y","list":[{"a":1},{"a":2}]}}',
        b'{"event_id":"d1","event_type":"view","occurred_at":"2024-03-10T09:00:00Z","product_id":"P1",'
        b'"query":"caf\\u00e9 \\u003a \\"quoted\\""}',
    ],
    ids=["colons-in-strings", "unicode-escapes"],
)
def test_lines_without_duplicated_keys_are_accepted(tmp_path, line):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    (folder / "ok.jsonl").write_bytes(line + b"\n")
    result = ingest_landing_day(tmp_path, DAY)
    assert result.reasons() == {} and len(result.accepted) == 1


def test_a_corrupt_gzip_is_an_unreadable_file_not_a_crashed_day(tmp_path):
    # Damage inside the deflate stream raises zlib.error, which is neither OSError nor
    # ValueError: it used to escape and fail the whole landing day.
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    body = b"".join(orjson.dumps(good(f"z{i}", query="x" * (i % 50))) + b"\n" for i in range(2000))
    damaged = bytearray(gzip.compress(body))
    for position in range(200, 260):
        damaged[position] ^= 0x5A
    (folder / "damaged.jsonl.gz").write_bytes(bytes(damaged))
    (folder / "good.jsonl").write_bytes(orjson.dumps(good("ok")) + b"\n")
    result = ingest_landing_day(tmp_path, DAY)
    unreadable = [q for q in result.quarantined if q["reason"] == "unreadable_file"]
    assert [q["source_file"] for q in unreadable] == ["2024-03-10/damaged.jsonl.gz"]
    assert "while decompressing" in unreadable[0]["detail"]
    assert "ok" in [row["event_id"] for row in result.accepted]


def test_a_bug_while_validating_a_line_is_raised_not_quarantined_as_an_unreadable_file(tmp_path, monkeypatch):
    # Only reading a file can make it "unreadable": a ValueError from the code that handles
    # its lines is a bug, and it must fail the run instead of hiding in quarantined_events.
    from warehouse import ingest

    def buggy(value, window):
        raise ValueError("a bug in validation")

    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(orjson.dumps(good("ok")) + b"\n")
    monkeypatch.setattr(ingest, "validate_event", buggy)
    with pytest.raises(ValueError, match="a bug in validation"):
        ingest_landing_day(tmp_path, DAY)

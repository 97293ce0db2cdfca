import gzip
from datetime import datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from shopguide.sources.online_retail import DEFAULT_PATH, EXPECTED_COLUMNS, import_online_retail
from warehouse.envelope import Window, validate_event


def read_events(landing: Path) -> list[dict]:
    events = []
    for path in sorted(landing.rglob("*.jsonl.gz")):
        with gzip.open(path) as handle:
            events += [orjson.loads(line) | {"_day": path.parent.name} for line in handle]
    return events


def write_source(tmp_path: Path, rows: list[tuple]) -> Path:
    frame = pl.DataFrame(
        rows,
        schema=list(EXPECTED_COLUMNS),
        orient="row",
    )
    path = tmp_path / "source.parquet"
    frame.write_parquet(path)
    return path


@pytest.fixture
def crafted(tmp_path):
    rows = [
        (
            "536365",
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            6,
            datetime(2010, 12, 1, 8, 26),
            2.55,
            17850.0,
            "United Kingdom",
        ),
        (
            "536366",
            "85123a",
            "WHITE HANGING HEART T-LIGHT HOLDER ",
            2,
            datetime(2011, 6, 1, 0, 30),
            2.55,
            None,
            "France",
        ),
        (
            "C536379",
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            -1,
            datetime(2011, 6, 2, 9, 0),
            2.55,
            17850.0,
            "United Kingdom",
        ),
        (
            "536380",
            "85123A",
            "CREAM HANGING HEART T-LIGHT HOLDER",
            1,
            datetime(2011, 6, 3, 9, 0),
            2.95,
            17850.0,
            "United Kingdom",
        ),
        ("536381", "85123A", "damaged", -12, datetime(2011, 6, 4, 9, 0), 0.0, None, "United Kingdom"),
        ("536382", "POST", "POSTAGE", 1, datetime(2011, 6, 4, 10, 0), 18.0, 12583.0, "France"),
        ("536383", "22633", "nan", 1, datetime(2011, 6, 4, 11, 0), 0.0, None, "United Kingdom"),
    ]
    return write_source(tmp_path, rows)


def test_mapping_of_crafted_lines(tmp_path, crafted):
    landing = tmp_path / "landing"
    summary = import_online_retail(landing, crafted)
    assert summary.reconciles and summary.line_events == 7
    events = {e["event_id"]: e for e in read_events(landing)}
    first = events["online-retail:line:1"]
    assert (first["event_type"], first["user_id"], first["session_id"]) == ("purchase", "17850", "536365")
    assert first["occurred_at"] == "2010-12-01T08:26:00Z"  # GMT in winter
    guest = events["online-retail:line:2"]
    assert guest["user_id"] is None
    # 00:30 British Summer Time is 23:30 UTC the day before: it lands on that UTC day.
    assert guest["occurred_at"] == "2011-05-31T23:30:00Z" and guest["_day"] == "2011-05-31"
    cancellation = events["online-retail:line:3"]
    assert (cancellation["event_type"], cancellation["quantity"]) == ("return", 1)
    assert events["online-retail:line:6"]["properties"]["merchandise"] is False
    # Catalog: first sighting, one title change; the warehouse note "damaged" is not a title.
    upserts = sorted(
        (e["event_id"], e["properties"]["title"])
        for e in events.values()
        if e["event_type"] == "product_upserted"
    )
    assert upserts == [
        ("online-retail:product:85123A:1", "WHITE HANGING HEART T-LIGHT HOLDER"),
        ("online-retail:product:85123A:2", "CREAM HANGING HEART T-LIGHT HOLDER"),
        ("online-retail:product:POST:1", "POSTAGE"),
    ]


def test_stock_adjustments_are_left_for_the_ingester_to_quarantine(tmp_path, crafted):
    landing = tmp_path / "landing"
    import_online_retail(landing, crafted)
    adjustment = next(e for e in read_events(landing) if e["event_id"] == "online-retail:line:5")
    day = datetime.fromisoformat(adjustment.pop("_day")).date()
    with pytest.raises(ValueError, match="quantity must be positive"):
        validate_event(adjustment, Window.for_landing_day(day))


def test_reimport_writes_identical_files(tmp_path, crafted):
    import_online_retail(tmp_path / "a", crafted)
    import_online_retail(tmp_path / "b", crafted)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.gz"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.gz"))
    assert files_a == files_b
    for rel in files_a:
        assert gzip.decompress((tmp_path / "a" / rel).read_bytes()) == gzip.decompress(
            (tmp_path / "b" / rel).read_bytes()
        )


def test_missing_or_wrong_file_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--path"):
        import_online_retail(tmp_path, tmp_path / "nope.parquet")
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="missing columns"):
        import_online_retail(tmp_path, tmp_path / "other.parquet")


def test_the_shipped_file_is_accounted_for_line_by_line(tmp_path):
    """Against the known facts of the real data (data/online_retail/README.md)."""
    summary = import_online_retail(tmp_path, DEFAULT_PATH)
    assert summary.source_lines == summary.line_events == 541_909
    assert summary.by_type["return"] == 9_288
    events = pl.concat(
        [
            pl.read_ndjson(p, schema_overrides={"user_id": pl.Utf8}, infer_schema_length=None).select(
                "event_id", "event_type", "session_id", "user_id", "product_id"
            )
            for p in sorted(tmp_path.rglob("*.jsonl.gz"))
        ],
        how="diagonal_relaxed",
    )
    lines = events.filter(pl.col("event_id").str.starts_with("online-retail:line:"))
    assert lines.height == 541_909
    assert lines["event_id"].n_unique() == 541_909
    assert lines["session_id"].n_unique() == 25_900
    assert lines["user_id"].drop_nulls().n_unique() == 4_372
    assert lines["user_id"].null_count() == 135_080
    assert lines["product_id"].n_unique() == 4_070

"""quality/aggregate.py: the suites judged from DuckDB aggregates give the verdicts, history
rows and examples of GX on the whole frame, and a defect planted in a large table is caught."""

from __future__ import annotations

import re
from datetime import date, datetime

import duckdb
import great_expectations.expectations as gxe
import polars as pl
import pytest
from test_quality import CORRUPTIONS, DAY, FCT_EVENTS_SQL, NOW, PRODUCTS_SQL, _event, _warehouse_with

from quality.aggregate import AGGREGATED, EXACT, FRAME, SAMPLED, how_evaluated, validate_frame, validate_query
from quality.docs import build_data_docs, site_dir
from quality.frames import EVENTS_SQL, RAW_EVENTS_SQL, raw_events_frame
from quality.suites import (
    ERROR,
    Suite,
    error,
    events_suite,
    products_suite,
    raw_events_suite,
    recommendation_suites,
)
from quality.validate import validate


def outcomes(run) -> list[tuple]:
    return sorted((o.expectation, o.severity, o.success, o.observed_value) for o in run.outcomes)


def both(suite_factory, con, sql: str, params=()):
    """The frame path and the aggregated path on the same rows."""
    frame = validate(suite_factory(), con.execute(sql, list(params)).df())
    aggregated = validate_query(suite_factory(), con, sql, list(params))
    return frame, aggregated


@pytest.fixture(scope="module")
def raw_con() -> duckdb.DuckDBPyConnection:
    return _warehouse_with([_event(n) for n in range(60)] + [_event(7)])  # one retried event


@pytest.mark.parametrize("name", ["clean", *sorted(CORRUPTIONS)])
def test_aggregated_raw_events_verdicts_equal_gx_on_the_frame(raw_con, name):
    frame = raw_events_frame(raw_con, DAY, DAY)
    if name != "clean":
        frame = CORRUPTIONS[name][0](frame)
    con = duckdb.connect()
    con.register("corrupted", frame)
    on_frame, aggregated = both(lambda: raw_events_suite(NOW), con, "select * from corrupted")
    assert outcomes(aggregated) == outcomes(on_frame)
    expected = {CORRUPTIONS[name][1]} if name != "clean" else set()
    assert {o.expectation for o in aggregated.failures(ERROR)} == expected
    assert aggregated.rows_checked == 61


def test_aggregated_events_verdicts_equal_gx_on_the_frame():
    con = duckdb.connect()
    con.execute(PRODUCTS_SQL)
    con.execute(FCT_EVENTS_SQL)
    for change in (
        "update fct_events set product_id = 'NOPE' where event_id = 'e1'",  # unknown product: warns
        "update fct_events set event_id = 'e0' where event_id = 'e7'",  # a duplicate key
        "update fct_events set price = 'nan'::double where event_id = 'e3'",  # NaN is null to GX
        "update fct_events set occurred_at = timestamp '2030-01-01' where event_id = 'e6'",
        "update fct_events set quantity = 0 where event_id = 'e2'",  # a view: the rule skips it
    ):
        con.execute(change)
    on_frame, aggregated = both(lambda: events_suite(NOW), con, EVENTS_SQL, [DAY, DAY])
    assert outcomes(aggregated) == outcomes(on_frame)
    assert {o.expectation for o in aggregated.failures()} == {
        "expect_column_values_to_be_unique(event_id)",
        "expect_column_values_to_be_between(occurred_at)",
        "expect_column_values_to_be_null(unknown_product_id)",
    }
    # An empty window is not a data error, on either path.
    on_frame, aggregated = both(lambda: events_suite(NOW), con, EVENTS_SQL, [date(2000, 1, 1)] * 2)
    assert (
        aggregated.rows_checked == 0
        and aggregated.failures() == []
        and outcomes(aggregated) == outcomes(on_frame)
    )


def test_a_replayed_day_blocks_on_the_aggregated_path():
    events = [_event(n) for n in range(60)]
    run = validate_query(raw_events_suite(NOW), _warehouse_with(events + events), RAW_EVENTS_SQL, [DAY, DAY])
    assert {o.expectation for o in run.failures(ERROR)} == {
        "expect_column_values_to_be_null(repeated_event_id, mostly=0.5)"
    }
    assert run.failures(ERROR)[0].observed_value.startswith("120 of 120 rows unexpected")


# A large table: 300,000 events, each defect planted in one row far from the start. -------------

ROWS = 300_000
LARGE_EVENTS_SQL = f"""
    create table fct_events as
    select 'e' || i as event_id,
           case i % 4 when 0 then 'purchase' when 1 then 'add_to_cart' else 'view' end as event_type,
           date '2024-01-01' as event_date,
           timestamp '2024-01-01 00:00' + (i % 86400) * interval 1 second as occurred_at,
           'u' || (i % 997) as user_id, false as is_guest, 's' || (i % 5003) as session_id,
           'P' || (i % 5) as product_id, null::varchar as search_query,
           case when i % 4 in (0, 1) then 1 + i % 9 end::integer as quantity,
           case when i % 4 in (0, 1) then 0.5 + i % 300 end::double as price, 'GBP' as currency,
           null::decimal(18, 4) as revenue, 'United Kingdom' as country, true as is_merchandise,
           date '2024-01-01' as landed_on, false as is_late
    from range({ROWS}) t(i)
"""
PLANTED = {
    # row (event_id) changed: (change, the expectation that must catch it, its observed value)
    "e123456": (
        "event_id = 'e17'",
        "expect_column_values_to_be_unique(event_id)",
        f"2 of {ROWS} rows unexpected, e.g. e17 ×2",
    ),
    "e200000": (
        "price = 500000",
        "expect_column_values_to_be_between(price, 0..100000)",
        f"1 of {ROWS} rows unexpected ({ROWS // 2} null, not judged), e.g. 500000 ×1",
    ),
    "e250001": (
        "occurred_at = timestamp '2024-01-04 00:00'",
        "expect_column_values_to_be_between(occurred_at)",
        f"1 of {ROWS} rows unexpected, e.g. 2024-01-04 00:00:00 ×1",
    ),
    "e299998": (
        "event_type = 'wishlist'",
        "expect_column_values_to_be_in_set(event_type)",
        f"1 of {ROWS} rows unexpected, e.g. wishlist ×1",
    ),
    "e150000": (  # a purchase
        "product_id = null",
        "expect_column_values_to_not_be_null(product_id)",
        f"1 of {ROWS - 1} rows unexpected, e.g. null ×1",  # every row but the wishlist is judged
    ),
    "e287653": (  # an add_to_cart
        "quantity = 0",
        "expect_column_values_to_be_between(quantity, 1..100000)",
        "1 of 150000 rows unexpected, e.g. 0 ×1",
    ),
    "e3": ("product_id = 'NEVER-LISTED'", "expect_column_values_to_be_null(unknown_product_id)", None),
}


def test_a_defect_planted_in_a_large_table_is_caught_with_exact_counts():
    con = duckdb.connect()
    con.execute(PRODUCTS_SQL)
    con.execute(LARGE_EVENTS_SQL)
    clean = validate_query(events_suite(NOW), con, EVENTS_SQL, [DAY, DAY])
    assert clean.rows_checked == ROWS and clean.failures() == []
    for event_id, (change, _, _) in PLANTED.items():
        con.execute(f"update fct_events set {change} where event_id = ?", [event_id])
    run = validate_query(events_suite(NOW), con, EVENTS_SQL, [DAY, DAY])
    observed = {o.expectation: o.observed_value for o in run.failures()}
    assert set(observed) == {expectation for _, expectation, _ in PLANTED.values()}
    for _, expectation, text in PLANTED.values():
        if text:
            assert observed[expectation] == text
    assert observed["expect_column_values_to_be_null(unknown_product_id)"].startswith(f"1 of {ROWS} rows")
    assert [o.expectation for o in run.failures(ERROR)] and all(
        o.severity == "warn" for o in run.failures() if "unknown_product_id" in o.expectation
    )


# How each rule is evaluated ---------------------------------------------------------------------


def test_the_event_suites_are_aggregated_but_for_the_column_types():
    for suite in (raw_events_suite(NOW), events_suite(NOW)):
        kinds = {e.expectation_type: set() for e in suite.expectations}
        for e in suite.expectations:
            kinds[e.expectation_type].add(how_evaluated(e))
        assert kinds.pop("expect_column_values_to_be_in_type_list") == {SAMPLED}
        assert set().union(*kinds.values()) == {AGGREGATED}


def test_rules_it_cannot_aggregate_run_on_the_whole_frame_with_the_same_verdicts():
    con = duckdb.connect()
    con.execute(PRODUCTS_SQL)
    con.execute("update dim_products set title = null where product_id = 'P2'")
    on_frame, aggregated = both(products_suite, con, "select * from dim_products")
    assert outcomes(aggregated) == outcomes(on_frame)
    assert [o.expectation for o in aggregated.failures()] == ["expect_column_values_to_not_be_null(title)"]

    # A row condition of another form than `column in [...]` is GX's to evaluate, on the frame.
    def odd():
        return Suite(
            "odd",
            [
                error(
                    gxe.ExpectColumnValuesToBeBetween,
                    column="price",
                    max_value=4,
                    row_condition="price > 3",
                    condition_parser="pandas",
                )
            ],
        )

    assert how_evaluated(odd().expectations[0]) == EXACT
    on_frame, aggregated = both(odd, con, "select * from dim_products")
    assert outcomes(aggregated) == outcomes(on_frame)
    assert [o.observed_value for o in aggregated.failures()] == ["2 of 2 rows unexpected, e.g. 4.5 ×1, 6 ×1"]


def test_it_runs_on_a_read_only_warehouse_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(PRODUCTS_SQL)
        con.execute(FCT_EVENTS_SQL)
    with duckdb.connect(str(path), read_only=True) as con:
        run = validate_query(events_suite(NOW), con, EVENTS_SQL, [DAY, DAY])
        assert run.rows_checked == 200 and run.failures() == []
        assert FRAME not in {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}


def test_data_docs_say_how_an_aggregated_validation_was_evaluated(tmp_path):
    events = [_event(n) for n in range(60)] + [_event(90, price=500_000.0)]
    run = validate_query(raw_events_suite(NOW), _warehouse_with(events), RAW_EVENTS_SQL, [DAY, DAY])
    run.checked_at = datetime(2024, 1, 3, 2)
    build_data_docs(tmp_path, [run], "run-a", "2024-01-01")
    page = next((site_dir(tmp_path) / "validations" / "raw_events").rglob("*.html"))
    text = " ".join(re.sub(r"<[^>]+>", " ", page.read_text()).split())
    assert "Status: Failed" in text and "Unsuccessful Expectations 1 " in text
    assert "10 aggregated (exact counts over every row, in DuckDB); 1 sampled (column type" in text
    assert "500000.0 1" in text  # the unexpected value and its count, as GX renders them


# The publish gate's suites on polars frames (quality.aggregate.validate_frame) ------------------


def _user_lists(users: int = 40, k: int = 5) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [f"u{n:03d}" for n in range(users) for _ in range(k)],
            "rank": [r for _ in range(users) for r in range(1, k + 1)],
            "score": [float(users * k - n) for n in range(users * k)],
            "reason": ["popular right now"] * (users * k),
        }
    )


def _with(frame: pl.DataFrame, row: int, **values) -> pl.DataFrame:
    return frame.with_columns(
        [
            pl.when(pl.int_range(pl.len()) == row).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
            for c, v in values.items()
        ]
    )


USER_LIST_DEFECTS = {
    "clean": lambda f: f,
    "a rank twice": lambda f: _with(f, 7, rank=2),  # u001's rank 2 twice
    "two keys twice, far apart": lambda f: _with(_with(f, 151, rank=1), 12, user_id="u001"),  # u030/1, u001/3
    "a list repeated": lambda f: pl.concat([f, f.slice(100, 5)]),
    "a null user": lambda f: _with(f, 3, user_id=None),
    "NaN and infinite scores": lambda f: _with(_with(f, 9, score=float("nan")), 19, score=float("inf")),
    "no reason": lambda f: _with(f, 33, reason=None),
}


@pytest.mark.parametrize("name", sorted(USER_LIST_DEFECTS))
def test_the_user_list_suite_on_a_polars_frame_equals_gx_on_pandas(name):
    suite = recommendation_suites()[0]
    frame = USER_LIST_DEFECTS[name](_user_lists())
    assert {how_evaluated(e) for e in suite.expectations} == {AGGREGATED}
    on_frame, in_duckdb = validate(suite, frame), validate_frame(suite, frame)
    assert outcomes(in_duckdb) == outcomes(on_frame)
    assert in_duckdb.rows_checked == on_frame.rows_checked == frame.height
    assert (name == "clean") == in_duckdb.passed()


def test_a_compound_key_ignores_rows_whose_values_are_all_missing():
    # GX's default domain for a compound key leaves out rows whose key is wholly missing;
    # a row missing one value still counts (and equals another such row, as in pandas).
    suite = Suite("keys", [error(gxe.ExpectCompoundColumnsToBeUnique, column_list=["user_id", "rank"])])
    frame = pl.DataFrame(
        {"user_id": ["a", "a", None, None, "b", "b", None], "rank": [1, 2, None, None, None, None, 4]}
    )
    on_frame, in_duckdb = validate(suite, frame), validate_frame(suite, frame)
    assert [o.success for o in in_duckdb.outcomes] == [o.success for o in on_frame.outcomes] == [False]
    # pandas holds the missing rank as NaN, which never equals itself in its example counts:
    # the verdict and the counts agree, the examples say None where pandas says nan.
    assert on_frame.outcomes[0].observed_value.startswith("2 of 7 rows unexpected (2 null, not judged)")
    assert in_duckdb.outcomes[0].observed_value == (
        "2 of 7 rows unexpected (2 null, not judged), e.g. ('b', None) ×2"
    )


def test_a_repeated_key_deep_in_a_large_user_table_is_found_with_its_example():
    frame = _user_lists(users=30_000, k=10)  # 300,000 rows
    frame = _with(frame, 271_234, rank=3)  # u27123's rank 5 becomes a second rank 3
    run = validate_frame(recommendation_suites()[0], frame)
    assert [o.observed_value for o in run.failures()] == [
        "2 of 300000 rows unexpected, e.g. ('u27123', 3) ×2"
    ]

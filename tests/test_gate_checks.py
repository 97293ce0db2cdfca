"""serving/gate.py: each check of the publish gate on its own, passing and failing.

test_serving.py drives the whole gate (`evaluate_gate`); here every check function gets the
same good candidate (it must pass) and one broken in exactly the way it guards against."""

from __future__ import annotations

import polars as pl
import pytest
from recommendation_tables import USERS, make_tables

from serving import gate
from serving.gate import CHECKS, GateContext, GateInput, GateThresholds, evaluate_gate
from serving.snapshots import SCHEMAS


def good_context(**overrides) -> GateContext:
    # The published version is the candidate itself, so that the overlap is computed (1.0).
    values = {"active_user_ids": USERS, "current_recommendations": make_tables()["user_recommendations"]}
    return GateContext(**{**values, **overrides})


def with_column(tables, table: str, column: str, where: pl.Expr, value) -> dict:
    tables = dict(tables)
    tables[table] = tables[table].with_columns(
        pl.when(where).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    return tables


def without_similar_products():
    tables = make_tables()
    del tables["similar_products"]
    return tables


def a_repeated_similar_row():
    tables = make_tables()
    tables["similar_products"] = pl.concat([tables["similar_products"], tables["similar_products"].head(1)])
    return tables


def _broken(name: str):
    """The candidate (tables, context) that the check `name` must fail, and its observed value."""
    tables, context = make_tables(), good_context()
    u01_rank2 = (pl.col("user_id") == "u01") & (pl.col("rank") == 2)
    cases = {
        "tables_present": (without_similar_products(), context, 1),
        "user_coverage": (make_tables(users=USERS[:15]), context, 0.75),
        "short_lists": (make_tables(k=5), context, 1.0),
        "no_empty_lists": (
            with_column(tables, "user_recommendations", "product_id", pl.col("user_id") == "u03", None),
            context,
            1,
        ),
        # u01's rank 1 is P02 already.
        "no_duplicate_user_recommendations": (
            with_column(tables, "user_recommendations", "product_id", u01_rank2, "P02"),
            context,
            1,
        ),
        "no_duplicate_similar_products": (a_repeated_similar_row(), context, 2),  # its item and its rank
        "no_duplicate_popular_products": (
            with_column(tables, "popular_products", "rank", pl.col("rank") == 2, 1),
            context,
            5,  # one repeated rank in each of the five popular lists
        ),
        "valid_values": (
            with_column(tables, "user_recommendations", "source", pl.col("user_id") == "u04", "magic"),
            context,
            10,
        ),
        "no_excluded_products": (tables, good_context(excluded_product_ids=["P05"]), None),
        "no_excluded_pairs": (
            tables,
            good_context(excluded_pairs=pl.DataFrame({"user_id": ["u00"], "product_id": ["P01"]})),
            1,
        ),
        "fallback_share": (make_tables(source="fallback_segment"), context, 1.0),
        "overlap_with_current": (
            tables,
            good_context(current_recommendations=make_tables(offset=20)["user_recommendations"]),
            0.0,
        ),
        "no_self_similar": (
            with_column(
                tables,
                "similar_products",
                "similar_product_id",
                (pl.col("product_id") == "P03") & (pl.col("rank") == 5),
                "P03",
            ),
            context,
            1,
        ),
    }
    return cases[name]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_each_check_passes_on_a_good_candidate(check):
    result = check(GateInput(make_tables(), good_context(), GateThresholds()))
    assert result.name == check.__name__
    assert result.passed, result.line()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_each_check_fails_on_the_fault_it_guards_against(check):
    tables, context, observed = _broken(check.__name__)
    result = check(GateInput(tables, context, GateThresholds()))
    assert result.name == check.__name__
    assert not result.passed, result.line()
    if observed is not None:
        assert result.observed == pytest.approx(observed)
    assert result.line().startswith(f"FAIL {check.__name__}: observed")


def test_excluded_product_names_an_example():
    tables, context, _ = _broken("no_excluded_products")
    result = gate.no_excluded_products(GateInput(tables, context, GateThresholds()))
    assert result.observed >= 1 and "P05 in user_recommendations" in result.message


def test_checks_read_their_thresholds():
    """A threshold moves the verdict: the same five-item lists pass once five is long enough."""
    g = GateInput(make_tables(k=5), good_context(), GateThresholds(min_list_length=5))
    assert gate.short_lists(g).passed
    g = GateInput(make_tables(users=USERS[:15]), good_context(), GateThresholds(min_user_coverage=0.75))
    assert gate.user_coverage(g).passed


def test_skipped_checks_pass_without_an_observed_value():
    g = GateInput(make_tables(), GateContext(), GateThresholds())
    for check in (gate.user_coverage, gate.overlap_with_current):
        result = check(g)
        assert result.passed and result.observed is None and "skipped" in result.message


def test_a_table_without_the_columns_read_is_checked_as_an_empty_published_table():
    tables = make_tables()
    tables["similar_products"] = tables["similar_products"].drop("source")
    g = GateInput(tables, good_context(), GateThresholds())
    assert g.similar_products.schema == pl.Schema(SCHEMAS["similar_products"])
    assert g.similar_products.is_empty()
    assert gate.valid_values(g).passed  # nothing to read, nothing crashes


def test_the_expectations_check_passes_and_fails():
    check, runs = gate.great_expectations(make_tables())
    assert check.name == "great_expectations" and check.passed, check.message
    assert runs
    broken = with_column(make_tables(), "user_recommendations", "rank", pl.col("user_id") == "u02", 0)
    check, _ = gate.great_expectations(broken)
    assert not check.passed and check.observed >= 1 and "user_recommendations" in check.message


def test_evaluate_gate_runs_every_check_in_order_then_the_expectations():
    tables, context, _ = _broken("fallback_share")
    result = evaluate_gate(tables, context)
    assert [c.name for c in result.checks] == [check.__name__ for check in CHECKS] + ["great_expectations"]
    g = GateInput(tables, context, GateThresholds())
    assert result.checks[:-1] == [check(g) for check in CHECKS]
    assert [c.name for c in result.failed] == ["fallback_share"]
    without = evaluate_gate(tables, context, GateThresholds(expectations=False))
    assert [c.name for c in without.checks] == [check.__name__ for check in CHECKS]


def test_duplicates_are_counted_as_the_rows_less_the_distinct_ones():
    # _duplicates counts distinct rows from their hashes, and list by list when two hash
    # alike (no copy of a 28M-row table's keys); the definition it must keep: rows less
    # distinct (list, item) rows among those with an item, and rows less distinct
    # (list, rank) rows, nulls equal to nulls.
    frame = pl.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", None, None, "b", "b", "c"],
            "rank": [1, 1, None, None, None, 2, None, 3, 1],
            "product_id": ["p", None, "p", None, "q", "q", "r", "s", None],
        }
    )
    items = frame.filter(pl.col("product_id").is_not_null())
    repeated_items = items.height - items.select("user_id", "product_id").unique().height
    repeated_ranks = frame.height - frame.select("user_id", "rank").unique().height
    assert (repeated_items, repeated_ranks) == (2, 2)  # a/p and null/q; a/1 and a/null
    check = gate._duplicates("dups", frame, ["user_id"], "product_id")
    assert check.observed == repeated_items + repeated_ranks and not check.passed
    assert check.message.startswith("2 repeated product_id within a list, 2 repeated ranks within a list")
    clean = frame.filter(pl.col("user_id").is_in(["b", "c"]))
    assert gate._duplicates("dups", clean, ["user_id"], "product_id").observed == 0


def test_distinct_rows_are_counted_exactly_when_hashes_collide(monkeypatch):
    # Equal hashes for distinct rows (a collision, forced here) must not count as a repeat:
    # the exact count decides.
    frame = pl.DataFrame({"user_id": ["a", "a", "b", None], "rank": [1, 2, 1, None]}).lazy()
    assert gate._distinct_rows(frame, ["user_id", "rank"]) == 4

    class Colliding:
        def __init__(self, columns):
            self.columns = columns

        def hash(self):
            return pl.lit(7, dtype=pl.UInt64)

    monkeypatch.setattr(gate.pl, "struct", Colliding)
    assert gate._distinct_rows(frame, ["user_id", "rank"]) == 4
    assert gate._distinct_rows(pl.concat([frame, frame.head(1)]), ["user_id", "rank"]) == 4

"""Validate a suite on a DuckDB query, or a polars frame, without loading its rows into pandas.

Why: on 10M events the frame path (quality/validate.py) cost as much as the steps it checks
(136 s per suite): the load into pandas, GX's per-row Python comparison of datetimes, and a
pass over every row per expectation. A row-level expectation only needs a few numbers: how
many rows it judges, how many of them are null, how many are unexpected, and the first
unexpected values as examples. DuckDB computes those exactly in one scan; GX's own
expectation classes then judge them (`Expectation._validate` takes the metrics GX would have
computed, applies `mostly` and builds the same result dictionary), so the verdict, the
history row and the Data Docs page are those of a full validation. `_validate` is GX's
internal entry point (GX is pinned, 1.24.1); tests/test_quality_aggregate.py holds both paths
to the same verdicts, counts and examples, so an upgrade that changes it fails there.

How each expectation is evaluated (docs/data-quality.md):

| kind | expectations | how |
|---|---|---|
| aggregated | (not) null, in or not in a set, between, unique, compound unique | exact counts, judged by GX |
| sampled | values in a type list | GX on the first `SAMPLE_ROWS` rows (a dtype is the column's) |
| exact | anything else | GX on the whole frame, loaded into pandas |

Nothing is estimated: "sampled" is used only where one row says as much as all of them.
GX's SQL datasource cannot do this for us: it is broken on DuckDB (../shared/STACK.md).
"""

from __future__ import annotations

import ast
import math
import tempfile
from datetime import date, datetime

import duckdb
import polars as pl

from quality.suites import Suite, naive_utc
from quality.validate import SuiteRun, result_format_for, run_outcomes, validate

SAMPLE_ROWS = 1_000
# DuckDB's own memory for a frame's counts. Its default (80 % of the machine) let the compound
# key's grouping of a million shoppers' 28M rows hold 2.5 GB, the publish step's peak; under
# this limit it held 1.0 GB for the same counts (and 1.5 s less); past it DuckDB spills to disk.
FRAME_MEMORY_LIMIT = "1GB"
EXAMPLES = 20  # GX's partial_unexpected_count in validate(): the first 20 unexpected values
FRAME = "_gx_frame"

AGGREGATED = "aggregated"
SAMPLED = "sampled"
EXACT = "exact"

# The unexpected rows of each supported map expectation, as SQL over non-null values (`{v}`
# is the column, `{null}` its null test). Not-null and null judge nulls themselves.
_UNEXPECTED = {
    "expect_column_values_to_not_be_null": "{null}",
    "expect_column_values_to_be_null": "not {null}",
    "expect_column_values_to_be_in_set": "not {null} and {v} not in ({values})",
    "expect_column_values_to_not_be_in_set": "not {null} and {v} in ({values})",
    "expect_column_values_to_be_between": "not {null} and ({outside})",
    # Every row whose value another row of the domain shares, as pandas' duplicated(keep=False).
    "expect_column_values_to_be_unique": (
        "not {null} and {v} in (select {v} from " + FRAME + " where {where} group by {v} having count(*) > 1)"
    ),
}
_HOW = {
    AGGREGATED: "aggregated (exact counts over every row, in DuckDB)",
    SAMPLED: f"sampled (column type, from the first {SAMPLE_ROWS:,} rows)",
    EXACT: "exact (GX on every row in pandas)",
}
_SAMPLED = {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"}
# A compound key (the published user table's (user_id, rank)): every row whose values another
# row of the domain shares, as pandas' duplicated(keep=False) over the columns; the domain
# leaves out the rows `ignore_row_if` names (by default those whose values are all missing).
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
_IGNORED_ROWS = {"all_values_are_missing": " and ", "any_value_is_missing": " or "}


def how_evaluated(expectation) -> str:
    """aggregated, sampled or exact (see the module docstring)."""
    kind = expectation.expectation_type
    if kind in _SAMPLED:
        return SAMPLED
    if kind == COMPOUND_UNIQUE and _row_condition_sql(expectation) is None:
        return AGGREGATED
    if kind in _UNEXPECTED and _row_condition_sql(expectation) is not False:
        return AGGREGATED
    return EXACT


def validate_query(
    suite: Suite,
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | None = None,
    *,
    checked_at: datetime | None = None,
) -> SuiteRun:
    """Validate the rows of `sql` against `suite`, reading them once into a temporary table
    (allowed on a read-only connection) and never into pandas unless an expectation needs
    the whole frame."""
    columns = needed_columns(suite)
    select = ", ".join(_quote(c) for c in sorted(columns)) if columns else "*"
    # Only the columns the rules read: the event log's lineage columns are most of its bytes.
    con.execute(f"create or replace temp table {FRAME} as select {select} from ({sql})", params or [])
    try:
        return _validate_frame_table(suite, con, checked_at)
    finally:
        con.execute(f"drop table if exists {FRAME}")


def validate_frame(suite: Suite, frame, *, checked_at: datetime | None = None) -> SuiteRun:
    """`validate_query` for a polars frame in memory: DuckDB scans the frame's Arrow buffers
    in place (no copy into DuckDB, none into pandas), only the columns the rules read. The
    publish gate validates a million shoppers' lists (28M rows) this way: in pandas, GX's
    frame path held those rows again as pandas columns and compared them row by row."""
    columns = needed_columns(suite)
    if columns is not None:
        frame = frame.select(sorted(columns))
    with tempfile.TemporaryDirectory(prefix="shopguide-gx-") as spill:
        config = {"memory_limit": FRAME_MEMORY_LIMIT, "temp_directory": spill}
        with duckdb.connect(config=config) as con:
            con.register(FRAME, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
            return _validate_frame_table(suite, con, checked_at)


def needed_columns(suite: Suite) -> set[str] | None:
    """The columns the suite's rules read (their columns and row conditions); None when a
    rule needs the whole table (a table-level rule evaluated on the frame)."""
    columns: set[str] = set()
    for e in suite.expectations:
        kwargs = e.configuration.kwargs
        named = [kwargs.get(k) for k in ("column", "column_A", "column_B")] + list(
            kwargs.get("column_list") or []
        )
        named = [c for c in named if c]
        if not named:
            return None
        columns.update(named)
        condition = _condition_text(kwargs.get("row_condition"))
        if condition:
            try:
                columns.update(
                    n.id for n in ast.walk(ast.parse(condition, mode="eval")) if isinstance(n, ast.Name)
                )
            except SyntaxError:
                return None
    if suite.index_column:
        columns.add(suite.index_column)
    return columns


def _validate_frame_table(suite: Suite, con, checked_at) -> SuiteRun:
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult

    checked_at = naive_utc(checked_at)
    types = {name: kind for name, kind, *_ in con.execute(f"describe {FRAME}").fetchall()}
    rows = con.execute(f"select count(*) from {FRAME}").fetchall()[0][0]
    groups: dict[str, list] = {AGGREGATED: [], SAMPLED: [], EXACT: []}
    for e in suite.expectations:
        groups[how_evaluated(e)].append(e)

    ordered = [
        ExpectationValidationResult(
            success=result["success"],
            expectation_config=e.configuration,
            result=result["result"],
            meta={"evaluated": f"{AGGREGATED}: exact counts over all {rows} rows in DuckDB"},
        )
        for e, result in zip(
            groups[AGGREGATED], _aggregated(con, groups[AGGREGATED], types, suite), strict=True
        )
    ]
    queries = {SAMPLED: f"select * from {FRAME} limit {SAMPLE_ROWS}", EXACT: f"select * from {FRAME}"}
    for kind, query in queries.items():
        if groups[kind]:
            run = validate(Suite(suite.name, groups[kind], suite.index_column), con.execute(query).df())
            for r in run.result.results:  # (GX orders its results its own way)
                r.meta = {**(r.meta or {}), "evaluated": _HOW[kind]}
                ordered.append(r)
    passed = sum(bool(r.success) for r in ordered)
    gx_result = ExpectationSuiteValidationResult(
        success=passed == len(ordered),
        results=ordered,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(ordered),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(ordered) - passed,
            "success_percent": 100.0 * passed / len(ordered) if ordered else None,
        },
        meta={
            "great_expectations_version": _gx_version(),
            # Shown on the validation's Data Docs page ("Batch Spec"): how its verdicts were reached.
            "batch_spec": {
                "batch_data": f"DuckDB query, {rows} rows",
                "evaluated": "; ".join(
                    f"{len(groups[kind])} {_HOW[kind]}"
                    for kind in (AGGREGATED, SAMPLED, EXACT)
                    if groups[kind]
                ),
            },
            "batch_markers": {},
            "active_batch_definition": {"datasource_name": "shopguide", "data_asset_name": suite.name},
            "validation_time": checked_at,
        },
        batch_id=f"shopguide-{suite.name}",
    )
    return SuiteRun(suite.name, checked_at, rows, run_outcomes(suite, gx_result), gx_result)


def _gx_version() -> str:
    import great_expectations as gx

    return gx.__version__


def _aggregated(con, expectations: list, types: dict, suite: Suite) -> list[dict]:
    """GX's verdict for each expectation, in their order: the single-column ones from counts
    computed in one scan (plus one small query per expectation that found unexpected rows,
    for its examples), a compound key from a grouping of its columns."""
    if not expectations:
        return []
    by_column = [e for e in expectations if e.expectation_type != COMPOUND_UNIQUE]
    judged = dict(zip(map(id, by_column), _by_column(con, by_column, types, suite), strict=True))
    return [
        judged[id(e)] if id(e) in judged else _compound_unique(con, e, types, result_format_for(suite))
        for e in expectations
    ]


def _by_column(con, expectations: list, types: dict, suite: Suite) -> list[dict]:
    """The single-column expectations' verdicts (see _aggregated)."""
    if not expectations:
        return []
    selects, predicates = [], []
    for n, e in enumerate(expectations):
        kwargs = e.configuration.kwargs
        column = kwargs["column"]
        if column not in types:
            raise KeyError(f"{suite.name}: {e.expectation_type} names column {column!r}, not in the frame")
        v = _quote(column)
        null = _null_test(v, types[column])
        where = _row_condition_sql(e) or "true"
        unexpected = _UNEXPECTED[e.expectation_type].format(
            v=v, null=null, where=where, values=_values(kwargs.get("value_set")), outside=_outside(v, kwargs)
        )
        predicates.append((where, unexpected, v))
        selects += [
            f"count(*) filter (where {where}) as n{n}",
            f"count(*) filter (where {where} and {null}) as nulls{n}",
            f"count(*) filter (where {where} and {unexpected}) as bad{n}",
        ]
    counts = con.execute(f"select {', '.join(selects)} from {FRAME}").fetchall()[0]
    rf = result_format_for(suite)
    out = []
    for n, e in enumerate(expectations):
        total, nulls, bad = counts[3 * n : 3 * n + 3]
        where, unexpected, v = predicates[n]
        # GX's examples: the first unexpected values in row order (nothing to fetch when none).
        query = f"select {v} from {FRAME} where {where} and {unexpected} limit {EXAMPLES}"
        examples = [r[0] for r in con.execute(query).fetchall()] if bad else []
        metric = e.map_metric
        metrics = {
            "table.row_count": total,
            "column_values.nonnull.unexpected_count": nulls,
            f"{metric}.unexpected_count": bad,
            f"{metric}.unexpected_values": examples,
        }
        out.append(e._validate(metrics, runtime_configuration={"result_format": rf}))
    return out


def _null_test(v: str, kind: str) -> str:
    """Missing as pandas sees it: null, or NaN in a float column."""
    return f"({v} is null or isnan({v}))" if kind in ("DOUBLE", "FLOAT") else f"({v} is null)"


def _compound_unique(con, e, types: dict, result_format: dict) -> dict:
    """GX's verdict on a compound key: the domain's rows, and those whose values another row
    of the domain shares (nulls equal to nulls, as in pandas' duplicated)."""
    columns = list(e.configuration.kwargs["column_list"])
    missing = [c for c in columns if c not in types]
    if missing:
        raise KeyError(f"{e.expectation_type} names columns {missing}, not in the frame")
    keys = ", ".join(_quote(c) for c in columns)

    def domain(prefix: str = "") -> str:
        joiner = _IGNORED_ROWS.get(e.ignore_row_if)
        nulls = [_null_test(prefix + _quote(c), types[c]) for c in columns]
        return f"not ({joiner.join(nulls)})" if joiner else "true"

    in_domain = domain()
    repeated = f"select {keys}, count(*) as n from {FRAME} where {in_domain} group by {keys} having n > 1"
    total, kept = con.execute(f"select count(*), count(*) filter (where {in_domain}) from {FRAME}").fetchone()
    bad = con.execute(f"select coalesce(sum(n), 0) from ({repeated})").fetchall()[0][0]
    examples = []
    if bad:
        # GX's examples: the first repeated rows in row order, as {column: value}.
        same = " and ".join(f"f.{_quote(c)} is not distinct from d.{_quote(c)}" for c in columns)
        rows = con.execute(
            f"select {', '.join('f.' + _quote(c) for c in columns)} from {FRAME} f "
            f"semi join ({repeated}) d on {same} where {domain('f.')} limit {EXAMPLES}"
        ).fetchall()
        examples = [dict(zip(columns, row, strict=True)) for row in rows]
    metric = e.map_metric
    metrics = {
        "table.row_count": total,
        f"{metric}.filtered_row_count": kept,
        f"{metric}.unexpected_count": int(bad),
        f"{metric}.unexpected_values": examples,
    }
    return e._validate(metrics, runtime_configuration={"result_format": result_format})


def _row_condition_sql(expectation) -> str | None | bool:
    """The expectation's pandas row condition as SQL: None without one, False when it is not
    of the one form the suites use (`column in [values]`)."""
    kwargs = expectation.configuration.kwargs
    condition = kwargs.get("row_condition")
    if not condition:
        return None
    condition = _condition_text(condition)
    if kwargs.get("condition_parser") != "pandas" or not isinstance(condition, str):
        return False
    try:
        tree = ast.parse(condition, mode="eval").body
        if not (
            isinstance(tree, ast.Compare)
            and isinstance(tree.left, ast.Name)
            and len(tree.ops) == 1
            and isinstance(tree.ops[0], ast.In)
        ):
            return False
        values = ast.literal_eval(tree.comparators[0])
    except (SyntaxError, ValueError):
        return False
    return f"{_quote(tree.left.id)} in ({_values(values)})"


def _condition_text(condition) -> str | None:
    """GX 1.24 stores a pandas row condition as a pass-through filter: its text."""
    if isinstance(condition, dict):
        return condition.get("pass_through_filter") if condition.get("type") == "pass_through" else None
    return condition


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isinf(value):
            return "'infinity'::double" if value > 0 else "'-infinity'::double"
        if isinstance(value, float) and math.isnan(value):
            return "'nan'::double"
        return repr(value)
    if isinstance(value, datetime):
        return f"timestamp '{naive_utc(value).isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def _values(values) -> str:
    if values is None:
        return ""
    # An empty set: `in ()` is not SQL, and `in (null)` is never true nor false.
    return ", ".join(_literal(v) for v in values) or "select null where false"


def _outside(v: str, kwargs: dict) -> str:
    """Between: outside [min, max] (strict bounds exclude them); an absent bound is open."""
    parts = []
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None:
        parts.append(f"{v} {'<=' if kwargs.get('strict_min') else '<'} {_literal(low)}")
    if high is not None:
        parts.append(f"{v} {'>=' if kwargs.get('strict_max') else '>'} {_literal(high)}")
    return " or ".join(parts) or "false"

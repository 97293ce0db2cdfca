"""Run a suite on a dataframe with an in-memory great-expectations context.

Why dataframes: GX's SQL datasource on DuckDB is broken in 1.24 (../shared/STACK.md: every
expectation fails with IndexError), so DuckDB query results are validated as pandas frames.
polars frames are converted with `.to_pandas()`. Nothing here touches a file: the result is
a `SuiteRun` with one plain `Outcome` per expectation and the GX result itself, which
`quality.record` turns into history rows and Data Docs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from quality.suites import ERROR, SEVERITIES, Suite, naive_utc

MAX_OBSERVED_CHARS = 500
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict, in the history table's terms."""

    suite: str
    expectation: str  # type(column[, mostly=...]): unique within a suite
    column_name: str | None
    severity: str  # error | warn
    success: bool
    observed_value: str


@dataclass
class SuiteRun:
    suite: str
    checked_at: datetime  # naive UTC
    rows_checked: int
    outcomes: list[Outcome]
    result: Any = field(default=None, repr=False)  # the GX ExpectationSuiteValidationResult

    def failures(self, severity: str | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and severity in (None, o.severity)]

    def passed(self, severity: str = ERROR) -> bool:
        return not self.failures(severity)

    def rows(self, run_id: str, partition_key: str) -> list[dict]:
        """Rows for the `data_quality_results` table (quality/history.py)."""
        return [
            {
                "checked_at": self.checked_at,
                "run_id": run_id,
                "suite": o.suite,
                "expectation": o.expectation,
                "column_name": o.column_name,
                "partition_key": partition_key,
                "success": o.success,
                "severity": o.severity,
                "observed_value": o.observed_value,
            }
            for o in self.outcomes
        ]


def memory_context():
    """An ephemeral GX context: in-memory stores, no progress bars, no analytics (no network)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def to_pandas(frame):
    if hasattr(frame, "to_pandas") and not hasattr(frame, "iloc"):  # polars
        return frame.to_pandas()
    return frame


def validate(suite: Suite, frame, *, checked_at: datetime | None = None) -> SuiteRun:
    """Validate `frame` (pandas or polars) against `suite`; never raises for bad data."""
    import great_expectations as gx

    df = to_pandas(frame)
    context = memory_context()
    batch = (
        context.data_sources.add_pandas("shopguide")
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("frame")
    )
    # Copies: GX binds an expectation object to the suite it is added to.
    expectations = [copy.copy(e) for e in suite.expectations]
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    result = definition.run(batch_parameters={"dataframe": df}, result_format=result_format_for(suite))
    return SuiteRun(suite.name, naive_utc(checked_at), len(df), run_outcomes(suite, result), result)


def result_format_for(suite: Suite) -> dict:
    """GX's SUMMARY: counts and the first 20 unexpected values (quality/aggregate.py asks the same)."""
    result_format: dict = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
    if suite.index_column:
        result_format["unexpected_index_column_names"] = [suite.index_column]
    return result_format


def run_outcomes(suite: Suite, result) -> list[Outcome]:
    """One Outcome per expectation result of a GX suite validation result."""
    return [_outcome(suite, r) for r in result.results]


def describe(config) -> tuple[str, str | None]:
    """(expectation label, column name) for an ExpectationConfiguration."""
    kwargs = config.kwargs
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ",".join(kwargs["column_list"])
    args = [column] if column else []
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    # Numeric bounds only: a bound on a time ("not after the run") changes every run, and the
    # label must stay the same from run to run for the history to be comparable.
    if isinstance(low, (int, float)) or isinstance(high, (int, float)):
        args.append(f"{_bound(low)}..{_bound(high)}")
    mostly = kwargs.get("mostly")
    if mostly is not None and mostly < 1:
        args.append(f"mostly={mostly:g}")
    return f"{config.type}({', '.join(args)})", column


def _bound(value) -> str:
    return _fmt(value) if isinstance(value, (int, float)) else ""


def _outcome(suite: Suite, result) -> Outcome:
    config = result.expectation_config
    label, column = describe(config)
    severity = (config.meta or {}).get("severity", ERROR)
    if severity not in SEVERITIES:
        raise ValueError(f"{suite.name}: {label} has severity {severity!r}; use one of {SEVERITIES}")
    return Outcome(
        suite.name, label, column, severity, bool(result.success), observed_text(result, suite.index_column)
    )


def _exception_message(info) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():  # keyed by metric when a metric failed to compute
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _fmt(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return "null" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy / pandas scalars
        try:
            return _fmt(value.item())
        except (ValueError, TypeError):
            pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def observed_text(result, index_column: str | None = None) -> str:
    """What GX observed, as one line: a value, or 'n of N rows unexpected, e.g. ...'."""
    message = _exception_message(result.exception_info)
    if message:
        return f"could not evaluate: {message}"[:MAX_OBSERVED_CHARS]
    r = result.result or {}
    if "unexpected_count" in r and r.get("unexpected_count") is not None:
        n, total = r["unexpected_count"], r.get("element_count")
        text = f"{n} of {total} rows unexpected"
        if r.get("missing_count"):
            text += f" ({r['missing_count']} null, not judged)"
        examples = _examples(r, index_column)
        if n and examples:
            text += ", e.g. " + ", ".join(examples)
        return text[:MAX_OBSERVED_CHARS]
    if "observed_value" in r:
        return _fmt(r["observed_value"])[:MAX_OBSERVED_CHARS]
    return ""


def _examples(r: dict, index_column: str | None) -> list[str]:
    if index_column and r.get("partial_unexpected_index_list"):
        rows = r["partial_unexpected_index_list"][:MAX_EXAMPLES]
        out = []
        for row in rows:
            if isinstance(row, dict):
                where = _fmt(row.get(index_column))
                values = [_fmt(v) for k, v in row.items() if k != index_column]
                out.append(f"{' '.join(values)} ({index_column} {where})")
        if out:
            return out
    counts = r.get("partial_unexpected_counts") or []
    if counts:
        return [f"{_fmt(c['value'])} ×{c['count']}" for c in counts[:MAX_EXAMPLES]]
    return [_fmt(v) for v in (r.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]]

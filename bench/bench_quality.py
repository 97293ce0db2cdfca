"""The GX checks on raw_events and fct_events at scale: the frame path against the aggregated one.

    python bench/bench_quality.py --warehouse HOME/warehouse/shopguide.duckdb [--first D --last D]
        [--frame]   # also time the old path: every row into pandas, GX on the frame

Prints, per suite: rows, wall and CPU seconds (user+sys of this process), peak RSS, the
failed expectations, and whether both paths gave the same verdicts (--frame). Run it on a
copy of a warehouse (it opens it read-only). Nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date, datetime

import duckdb

from quality.aggregate import validate_query
from quality.frames import EVENTS_SQL, RAW_EVENTS_SQL
from quality.suites import events_suite, raw_events_suite
from quality.validate import validate


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(what, fn):
    wall, used = time.perf_counter(), cpu()
    value = fn()
    wall, used = time.perf_counter() - wall, cpu() - used
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"  {what:34s} {wall:7.1f} s wall {used:7.1f} s cpu   peak RSS so far {peak:.1f} GB", flush=True)
    return value


def verdicts(run):
    return sorted((o.expectation, o.success) for o in run.outcomes)


def observed(run):
    return sorted((o.expectation, o.observed_value) for o in run.outcomes)


def measure(con, sql: str, params: list, suite, frame_too: bool) -> bool:
    """Time one suite's aggregated path (and the frame path); True when their verdicts agree."""
    run = timed("aggregated (DuckDB + GX)", lambda: validate_query(suite(), con, sql, params))
    print(f"    {run.rows_checked} rows; failed: {[o.expectation for o in run.failures()]}")
    if not frame_too:
        return True
    frame = timed("frame: load into pandas", lambda: con.execute(sql, params).df())
    old = timed("frame: GX on the frame", lambda: validate(suite(), frame))
    agrees = verdicts(old) == verdicts(run)
    failed = [o.expectation for o in old.failures()]
    print(f"    verdicts {'agree' if agrees else 'DIFFER'}; frame failed: {failed}")
    # Counts are exact on both paths; the examples may differ where row order does (a parallel scan).
    for (label, mine), (_, theirs) in zip(observed(run), observed(old), strict=True):
        if mine != theirs:
            print(f"    observed differs for {label}:\n      aggregated: {mine}\n      frame:      {theirs}")
    return agrees


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--first", type=date.fromisoformat)
    parser.add_argument("--last", type=date.fromisoformat)
    parser.add_argument("--frame", action="store_true", help="also time the frame path (slow at scale)")
    args = parser.parse_args()
    con = duckdb.connect(args.warehouse, read_only=True)
    low, high = con.execute("select min(_partition_date), max(_partition_date) from raw_events").fetchall()[0]
    first, last = args.first or low, args.last or high
    now = datetime.now()
    threads = con.execute("select current_setting('threads')").fetchall()[0][0]
    print(f"window {first}..{last}; DuckDB threads {threads}")
    timed("import great_expectations", lambda: __import__("great_expectations"))
    same = True
    for name, sql, suite in (
        ("raw_events", RAW_EVENTS_SQL, raw_events_suite),
        ("events", EVENTS_SQL, events_suite),
    ):
        print(name)
        same &= measure(con, sql, [first, last], lambda s=suite: s(now), args.frame)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

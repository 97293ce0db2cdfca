"""Benchmark of ingestion: the vectorised fast path against the per-line path (issue 15).

Both ingest every landing day of a SHOPGUIDE_HOME and write it to a fresh warehouse file,
as the `raw_events` asset does (`replace_partition` per landing day, one connection), each
in its own child process, so that CPU seconds (user + sys) are its own. Prints wall and CPU
seconds for validation and for the write, lines per second and the load average around each
run; asserts nothing about timing (the equality of the two lives in
tests/test_ingest_fastpath.py).

    shopguide import online-retail        # or: shopguide generate --events 1000000
    python bench/bench_ingest.py          # SHOPGUIDE_HOME's landing days
    python bench/bench_ingest.py --days 30
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

ROADS = ("vectorised", "per-line")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(road: str, days_limit: int) -> None:
    from core.settings import Paths
    from warehouse.ingest import ingest_landing_day_per_line, ingest_landing_days
    from warehouse.landing import landing_days
    from warehouse.store import connect, replace_partition

    landing = Paths.from_env().landing
    days = landing_days(landing)[: days_limit or None]
    results = (
        ingest_landing_days(landing, days)
        if road == "vectorised"
        else ((day, ingest_landing_day_per_line(landing, day)) for day in days)
    )
    started, started_cpu = time.perf_counter(), cpu()
    write = write_cpu = 0.0
    lines = 0
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "bench.duckdb") as con:
        for day, result in results:
            before, before_cpu = time.perf_counter(), cpu()
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
            write += time.perf_counter() - before
            write_cpu += cpu() - before_cpu
            lines += result.lines_read
    wall, used = time.perf_counter() - started, cpu() - started_cpu
    print(
        f"{road:10s} {len(days)} days, {lines:,} lines: {wall:.2f} s wall, {used:.2f} s CPU | "
        f"validation {wall - write:.2f} s wall, {used - write_cpu:.2f} s CPU, "
        f"{lines / (wall - write):,.0f} lines/s | write {write:.2f} s wall, {write_cpu:.2f} s CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=0, help="only the first N landing days (default: all)")
    parser.add_argument("--child", choices=ROADS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.days)
        return
    for road in ROADS:
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        command = [sys.executable, __file__, "--child", road, "--days", str(args.days)]
        subprocess.run(command, check=True, cwd=REPO_ROOT)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

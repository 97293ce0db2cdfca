"""The dbt models on Spark (local mode) against DuckDB, on the same synthetic events.

Why it exists: issue 13 asks for the `spark` target's time against DuckDB's on the same
synthetic events (docs/architecture.md, "The dbt project on Spark"). In one temporary
SHOPGUIDE_HOME it generates `--events` over `--days` days (`shopguide generate`), ingests
every landing day into the DuckDB event log (not timed), then times, each as one window over
all the days (a backfill's dbt step):

1. **duckdb**: `dbt build` on the duckdb target;
2. **export**: the event log copied to Parquet for Spark (warehouse/lake.py);
3. **spark**: `dbt build --target spark` (a local Spark in the dbt process, Java 17).

Each dbt build is a child process; its CPU seconds are the user + sys of its process tree
(the JVM included), sampled with psutil while it runs, since the JVM is not always waited
for. The machine's load average is printed with every figure. Then it checks that every
mart's row count and checksum agree (warehouse/lake.py's canonical_checksum).

    python bench/bench_spark_target.py --events 1000000 --days 30
    python bench/bench_spark_target.py --events 100000 --keep --workdir /tmp/sg-spark

Asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

import duckdb  # noqa: E402
import psutil  # noqa: E402


def timed_tree(command: list[str], env: dict) -> dict:
    """Run a command; wall seconds and the CPU seconds of its whole process tree."""
    started = time.perf_counter()
    process = psutil.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cpu: dict[int, float] = {}
    loads = []
    while process.poll() is None:
        try:
            for proc in [process, *process.children(recursive=True)]:
                times = proc.cpu_times()
                cpu[proc.pid] = times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
        loads.append(os.getloadavg()[0])
        time.sleep(0.5)
    output = process.stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{output[-3000:]}")
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(sum(cpu.values()), 1),
        "load_avg": round(sum(loads) / max(len(loads), 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from core.dbt_manifest import DBT_DIR, DBT_EXECUTABLE, mart_models
    from core.settings import Paths
    from shopguide.sources.synthetic import SyntheticConfig, generate
    from warehouse.ingest import ingest_landing_day
    from warehouse.lake import canonical_checksum, export_event_log, spark_table_relation
    from warehouse.store import connect, ensure_event_log, replace_partition

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sg-spark-bench-"))
    home = Paths(workdir / "home").ensure()
    env = {**os.environ, "SHOPGUIDE_HOME": str(home.home), "DO_NOT_TRACK": "1"}
    start = date(2024, 1, 1)
    generate(home.landing, SyntheticConfig(events=args.events, days=args.days, start_date=start))
    days = sorted(date.fromisoformat(p.name) for p in home.landing.iterdir() if p.is_dir())
    first, last = days[0], days[-1]
    with connect(home.warehouse) as con:
        ensure_event_log(con)
        for day in days:
            result = ingest_landing_day(home.landing, day)
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
        rows = con.execute("select count(*) from raw_events").fetchone()[0]
    print(f"{args.events:,} events, {args.days} days: {rows:,} raw_events rows, landing days {first}..{last}")

    variables = json.dumps({"min_date": str(first), "max_date": str(last)})
    dbt = [str(DBT_EXECUTABLE), "build", "--exclude-resource-type", "unit_test", "--vars", variables]
    dbt += ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
    dbt += ["--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")]
    figures = {"duckdb": timed_tree([*dbt, "--target", "duckdb"], env)}
    print(f"duckdb dbt build: {figures['duckdb']}")

    started = time.perf_counter()
    with connect(home.warehouse, read_only=True) as con:
        export_event_log(con, home.lake, [first + timedelta(days=n) for n in range((last - first).days + 1)])
    figures["export"] = {"wall_s": round(time.perf_counter() - started, 1), "load_avg": os.getloadavg()[0]}
    print(f"event log → Parquet: {figures['export']}")
    figures["spark"] = timed_tree([*dbt, "--target", "spark"], env)
    print(f"spark dbt build: {figures['spark']}")

    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        for mart in mart_models():
            a = canonical_checksum(con, f"main.{mart}")
            b = canonical_checksum(con, spark_table_relation(home.spark_warehouse, mart))
            print(f"  {mart:34s} rows {a[0]:>10,}  {'same' if a == b else 'DIFFERENT: ' + str(b[:2])}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

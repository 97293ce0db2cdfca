"""Benchmark of the foundation: synthetic landing files → event log → dbt marts.

Why it exists: to know what one machine does at 1e6 and 1e7 events before building on
it, and what dbt costs on top of the SQL it runs. For each size it times, in a fresh
SHOPGUIDE_HOME:

1. generating the synthetic landing files;
2. ingesting every landing day the way the `raw_events` Dagster asset does
   (`ingest_landing_days` + `replace_partition` in one connection);
3. copying the warehouse (event log only) to a second file;
4. a full `dbt run` over every landing day (what a backfill does), as a subprocess;
5. bench/handwritten_models.sql, the same models as one plain DuckDB script, on the copy,
   as a subprocess; then it checks that both builds hold the same relations, columns and
   rows (warehouse.status checksums).

It prints figures and ratios and writes them as JSON; it asserts nothing about timing.
Run from the repository root:

    python bench/bench_foundation.py --events 1000000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

from core.settings import Paths  # noqa: E402
from shopguide.sources.synthetic import SyntheticConfig, generate  # noqa: E402
from warehouse.ingest import ingest_landing_days  # noqa: E402
from warehouse.landing import landing_days  # noqa: E402
from warehouse.status import EXCLUDED_FROM_CHECKSUM, warehouse_status  # noqa: E402
from warehouse.store import connect, partition_counts, replace_partition  # noqa: E402

SQL_SCRIPT = REPO_ROOT / "bench" / "handwritten_models.sql"
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "out" / "foundation.json"
DEFAULT_EVENTS = "1000000,10000000"
SEED, DAYS = 42, 30
EVENT_LOG_TABLES = ("raw_events", "quarantined_events", "ingestion_log")
MART_TABLES = (
    "fct_events",
    "fct_sessions",
    "dim_products",
    "dim_users",
    "fct_user_product_interactions",
    "fct_daily_product_metrics",
)
ROUND_DIGITS = 6  # for DOUBLE columns in the fallback comparison (see rounded_checksum)
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
MB = 1024 * 1024
SAMPLE_SECONDS = 0.05  # RSS polling interval for child processes
CHILDREN_EVERY = 10  # re-list the child's descendants every this many samples (it scans /proc)

CHILD_RSS_METHOD = (
    "child peak RSS = max(psutil RSS of the child's process tree sampled every 50 ms, "
    "the child's kernel VmHWM as last read); not getrusage(RUSAGE_CHILDREN), whose "
    "ru_maxrss inherits this (parent) process's high-water mark at fork/exec"
)
SELF_RSS_METHOD = (
    "ingestion peak RSS = VmHWM of this process, reset via /proc/self/clear_refs before the phase (Linux)"
)
SELF_RSS_FALLBACK = (
    "ingestion peak RSS = resource.getrusage(RUSAGE_SELF).ru_maxrss, the peak since this "
    "process started (it includes generation and earlier sizes)"
)

# The hand-written build runs in its own interpreter so its memory is measured like dbt's.
SQL_CHILD_CODE = """\
import sys, time, duckdb
started = time.perf_counter()
con = duckdb.connect(sys.argv[1])
con.execute(open(sys.argv[2]).read())
con.close()
print(f"execute_seconds={time.perf_counter() - started:.6f}")
"""


# ----------------------------------------------------------------------------- memory


def reset_self_peak() -> bool:
    """Reset this process's peak RSS so the next phase is measured alone (Linux only)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_hwm_bytes(pid: int | str = "self") -> int | None:
    """The kernel's high-water mark of resident memory for a process, or None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def self_peak_bytes(was_reset: bool) -> int:
    """Peak RSS of this process since the last reset (or since start, if reset failed)."""
    hwm = vm_hwm_bytes() if was_reset else None
    if hwm is not None:
        return hwm
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


class TreePeakSampler(threading.Thread):
    """Polls a child's process tree for its peak RSS while the main thread waits on it.

    The sum over the tree catches a child that forks workers; the root's VmHWM catches
    a spike between two samples.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_tree = 0
        self.peak_hwm = 0
        self._done = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        tree, samples = [root], 0
        while not self._done.is_set():
            if samples % CHILDREN_EVERY == 0:
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    break
            self.peak_tree = max(self.peak_tree, _tree_rss(tree))
            self.peak_hwm = max(self.peak_hwm, vm_hwm_bytes(self.pid) or 0)
            samples += 1
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak_tree, self.peak_hwm)


def _tree_rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # exited (or a zombie) between listing and reading
            pass
    return total


@dataclass
class ChildRun:
    seconds: float
    peak_rss_bytes: int
    returncode: int
    log: str


def run_child(command: list[str], *, env: dict[str, str], log: Path) -> ChildRun:
    """Run a command to completion from the repo root; wall-clock seconds and peak RSS."""
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreePeakSampler(process.pid)
        sampler.start()
        returncode = process.wait()
        seconds = time.perf_counter() - started
        peak = sampler.stop()
    return ChildRun(seconds, peak, returncode, str(log))


def _fail(what: str, run: ChildRun) -> None:
    tail = Path(run.log).read_text(errors="replace")[-4000:]
    raise SystemExit(f"{what} failed (exit {run.returncode}); last lines of {run.log}:\n{tail}")


# ----------------------------------------------------------------------------- phases


def generate_landing(paths: Paths, events: int) -> dict:
    """Step 1: synthetic landing files, the same ones for every run of a size (seed 42)."""
    was_reset = reset_self_peak()
    started = time.perf_counter()
    summary = generate(paths.landing, SyntheticConfig(events=events, seed=SEED, days=DAYS))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "events": summary.events,
        "files": len(summary.files),
        "landing_days": summary.days,
        "late": summary.late,
        "duplicates": summary.duplicates,
        "malformed": summary.malformed,
        "landing_bytes": sum(p.stat().st_size for p in paths.landing.rglob("*") if p.is_file()),
        "peak_rss_bytes": self_peak_bytes(was_reset),
    }


def ingest_all_days(paths: Paths) -> dict:
    """Step 2: every landing day into the event log, exactly as the `raw_events` asset does.

    One connection for the whole range (a backfill's single run), one
    `replace_partition` per day, and the same stored-counts reconciliation.
    """
    days = landing_days(paths.landing)
    was_reset = reset_self_peak()
    totals = {"files": 0, "lines_read": 0, "accepted": 0, "quarantined": 0}
    mismatches = []
    started = time.perf_counter()
    with connect(paths.warehouse) as con:
        for day, result in ingest_landing_days(paths.landing, days):
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
            stored = partition_counts(con, day)
            if not (stored["lines_read"] == result.lines_read == stored["accepted"] + stored["quarantined"]):
                mismatches.append(f"{day}: read {result.lines_read}, stored {stored}")
            totals["files"] += len(result.files)
            totals["lines_read"] += result.lines_read
            totals["accepted"] += len(result.accepted)
            totals["quarantined"] += len(result.quarantined)
            del result  # hold one batch of landing days at a time, as the asset does
    seconds = time.perf_counter() - started
    return {
        **totals,
        "seconds": seconds,
        "rows_per_second": totals["lines_read"] / seconds if seconds else 0.0,
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
        "reconcile_mismatches": mismatches,
        "warehouse_bytes": paths.warehouse.stat().st_size,
        "peak_rss_bytes": self_peak_bytes(was_reset),
        "peak_rss_method": SELF_RSS_METHOD if was_reset else SELF_RSS_FALLBACK,
    }


def copy_warehouse(source: Path, target: Path) -> None:
    """Step 3: the hand-written build starts from the same event log dbt starts from."""
    wal = source.with_name(source.name + ".wal")
    if wal.exists():  # closed connections checkpoint, so this should not happen
        raise RuntimeError(f"{wal} exists: the warehouse was not closed cleanly")
    shutil.copyfile(source, target)


def child_env(paths: Paths) -> dict[str, str]:
    """What `Paths.export` would set, for a child only: this process's env stays as it is."""
    env = dict(os.environ)
    env.update(
        SHOPGUIDE_HOME=str(paths.home),
        DAGSTER_HOME=str(paths.dagster_home),
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return env


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def run_dbt(paths: Paths, first: str, last: str) -> dict:
    """Step 4: `dbt run` over every landing day: a full first build, as in a backfill.

    target/ and logs/ go under the temporary home, not dbt_project/, so the run
    cannot disturb (or be sped up by) a developer's partial-parse state: every run
    parses the project from scratch. That start-up is in the wall-clock figure; dbt's
    own elapsed time and per-model times (run_results.json) are reported beside it.
    """
    variables = json.dumps({"min_date": first, "max_date": last}, sort_keys=True)
    target = paths.home / "dbt_target"
    command = [
        dbt_executable(), "run",
        "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
        "--vars", variables,
        "--target-path", str(target), "--log-path", str(paths.home / "dbt_logs"),
    ]  # fmt: skip
    run = run_child(command, env=child_env(paths), log=paths.home / "dbt_run.out")
    if run.returncode:
        _fail("dbt run", run)
    results = json.loads((target / "run_results.json").read_text())
    models = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 3) for r in results["results"]}
    return {
        **asdict(run),
        "command": " ".join(command[1:]),
        "dbt_elapsed_seconds": results["elapsed_time"],
        "models_seconds": sum(models.values()),
        "models": models,
        "warehouse_bytes": paths.warehouse.stat().st_size,
    }


def run_handwritten(paths: Paths, database: Path) -> dict:
    """Step 5a: the hand-written script on the copy, in its own interpreter."""
    command = [sys.executable, "-c", SQL_CHILD_CODE, str(database), str(SQL_SCRIPT)]
    run = run_child(command, env=child_env(paths), log=paths.home / "handwritten.out")
    if run.returncode:
        _fail("hand-written SQL", run)
    output = Path(run.log).read_text()
    execute = next(
        float(line.split("=", 1)[1]) for line in output.splitlines() if line.startswith("execute_seconds=")
    )
    return {**asdict(run), "execute_seconds": execute, "warehouse_bytes": database.stat().st_size}


def relations(database: Path) -> dict[str, dict]:
    """Every relation but the event log: kind, rows, checksum and (name, type) columns."""
    with connect(database, read_only=True) as con:
        status = {s["table"]: s for s in warehouse_status(con) if s["table"] not in EVENT_LOG_TABLES}
        for name, column, data_type in con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'main' order by table_name, ordinal_position"
        ).fetchall():
            if name in status:
                status[name].setdefault("columns", []).append([column, data_type])
    return status


def compare_builds(dbt_db: Path, sql_db: Path) -> list[dict]:
    """Step 5b: both builds must hold the same relations, columns, rows and checksums.

    A relation matches "exact" when warehouse.status's checksums are equal, or
    "rounded" when they differ only in DOUBLE columns beyond 6 decimals (see
    `rounded_checksum` for why that happens and why it is not a difference in logic).
    """
    built_by_dbt, built_by_sql = relations(dbt_db), relations(sql_db)
    rows = []
    for name in sorted(built_by_dbt.keys() | built_by_sql.keys(), key=_relation_order):
        left, right = built_by_dbt.get(name), built_by_sql.get(name)
        row = {
            "relation": name,
            "kind": (left or right)["kind"],
            "mart": name in MART_TABLES,
            "dbt": _summary(left),
            "sql": _summary(right),
            "columns_match": bool(left and right and left["columns"] == right["columns"]),
            "match": None,  # "exact", "rounded" or None
        }
        comparable = bool(
            row["columns_match"] and left["kind"] == right["kind"] and left["rows"] == right["rows"]
        )
        if comparable and left["checksum"] == right["checksum"]:
            row["match"] = "exact"
        elif comparable:
            row["dbt"]["rounded_checksum"] = rounded_checksum(dbt_db, name)
            row["sql"]["rounded_checksum"] = rounded_checksum(sql_db, name)
            if row["dbt"]["rounded_checksum"] == row["sql"]["rounded_checksum"]:
                row["match"] = "rounded"
        rows.append(row)
    return rows


def rounded_checksum(database: Path, name: str) -> str:
    """warehouse.status's checksum with DOUBLE columns rounded to ROUND_DIGITS decimals.

    Why: `sum()` over DOUBLE is not associative, and DuckDB's parallel aggregation adds
    the rows of a group in a run-dependent order, so `net_revenue` in dim_users and
    fct_daily_product_metrics differs in its last bits between two builds, even between
    two runs of the same SQL on the same input (it is reproducible with `threads=1`).
    The exact values are sums of cents, far from a rounding boundary at 1e-6, so
    rounding removes that noise and nothing a logic error would produce.
    """
    with connect(database, read_only=True) as con:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'main' and table_name = ? order by ordinal_position",
            [name],
        ).fetchall()
        fields = []
        for column, data_type in columns:
            if column in EXCLUDED_FROM_CHECKSUM:
                continue
            quoted = '"' + column.replace('"', '""') + '"'
            value = f"round({quoted}, {ROUND_DIGITS})" if data_type in FLOAT_TYPES else quoted
            fields.append(f"{quoted} := {value}")
        quoted_name = '"' + name.replace('"', '""') + '"'
        (checksum,) = con.execute(
            f"select coalesce(sum(hash(struct_pack({', '.join(fields)}))::hugeint), 0) "
            f"% 18446744073709551616 from {quoted_name}"
        ).fetchone()
    return f"{int(checksum):016x}"


def _relation_order(name: str) -> tuple[int, str]:
    """Staging, then intermediate, then marts, as in the dbt project."""
    for rank, prefix in enumerate(("stg_", "int_")):
        if name.startswith(prefix):
            return rank, name
    return 2, name


def _summary(status: dict | None) -> dict | None:
    if status is None:
        return None
    return {"kind": status["kind"], "rows": status["rows"], "checksum": status["checksum"]}


# ----------------------------------------------------------------------------- one size


def bench_size(events: int, home: Path) -> dict:
    """All steps for one size in a fresh, empty SHOPGUIDE_HOME."""
    paths = Paths(home).ensure()
    say(f"\n== {events:,} events, SHOPGUIDE_HOME={paths.home}")

    generated = generate_landing(paths, events)
    say(
        f"generate   {generated['seconds']:8.2f} s  {generated['files']} files, "
        f"{generated['landing_bytes'] / MB:,.0f} MB, {generated['events']:,} distinct events "
        f"(+{generated['duplicates']:,} duplicates, {generated['malformed']:,} malformed lines)"
    )

    ingested = ingest_all_days(paths)
    say(
        f"ingest     {ingested['seconds']:8.2f} s  {ingested['lines_read']:,} lines read, "
        f"{ingested['accepted']:,} accepted, {ingested['quarantined']:,} quarantined, "
        f"{ingested['rows_per_second']:,.0f} rows/s, peak RSS "
        f"{ingested['peak_rss_bytes'] / MB:,.0f} MB, reconcile mismatches: "
        f"{len(ingested['reconcile_mismatches'])}"
    )

    copy = paths.warehouse.with_name("handwritten.duckdb")
    copy_warehouse(paths.warehouse, copy)

    dbt = run_dbt(paths, ingested["first_day"], ingested["last_day"])
    say(
        f"dbt run    {dbt['seconds']:8.2f} s  wall-clock (dbt's own elapsed "
        f"{dbt['dbt_elapsed_seconds']:.2f} s, models {dbt['models_seconds']:.2f} s), "
        f"peak RSS {dbt['peak_rss_bytes'] / MB:,.0f} MB"
    )

    sql = run_handwritten(paths, copy)
    say(
        f"hand SQL   {sql['seconds']:8.2f} s  wall-clock (execute {sql['execute_seconds']:.2f} s), "
        f"peak RSS {sql['peak_rss_bytes'] / MB:,.0f} MB"
    )

    comparison = compare_builds(paths.warehouse, copy)
    print_comparison(comparison)
    return {
        "events": events,
        "home": str(paths.home),
        "generate": generated,
        "ingest": ingested,
        "dbt": dbt,
        "handwritten": sql,
        "ratio_dbt_to_handwritten": dbt["seconds"] / sql["seconds"],
        "comparison": comparison,
        "builds_agree": all(row["match"] for row in comparison),
        "builds_agree_exactly": all(row["match"] == "exact" for row in comparison),
    }


def print_comparison(rows: list[dict]) -> None:
    say(
        f"{'relation':<32} {'kind':<5} {'dbt rows':>10} {'dbt checksum':>17} "
        f"{'sql rows':>10} {'sql checksum':>17}  result"
    )
    for row in rows:
        left, right = row["dbt"] or {}, row["sql"] or {}
        if row["match"] == "exact":
            verdict = "match"
        elif row["match"] == "rounded":
            verdict = f"match with DOUBLEs rounded to 1e-{ROUND_DIGITS} ({left['rounded_checksum']})"
        else:
            verdict = "MISMATCH" + ("" if row["columns_match"] else " (columns differ)")
        say(
            f"{row['relation']:<32} {row['kind']:<5} {left.get('rows', '-'):>10} "
            f"{left.get('checksum', '-'):>17} {right.get('rows', '-'):>10} "
            f"{right.get('checksum', '-'):>17}  {verdict}"
        )


# ----------------------------------------------------------------------------- report


def _agreement(result: dict) -> str:
    if result["builds_agree_exactly"]:
        return "exact"
    return "rounded" if result["builds_agree"] else "NO"


SUMMARY_COLUMNS = (
    ("events", 11, lambda r: f"{r['events']:,}"),
    ("gen s", 8, lambda r: f"{r['generate']['seconds']:.1f}"),
    ("ingest s", 9, lambda r: f"{r['ingest']['seconds']:.1f}"),
    ("ingest rows/s", 14, lambda r: f"{r['ingest']['rows_per_second']:,.0f}"),
    ("dbt s", 8, lambda r: f"{r['dbt']['seconds']:.2f}"),
    ("SQL s", 8, lambda r: f"{r['handwritten']['seconds']:.2f}"),
    ("dbt/SQL", 8, lambda r: f"{r['ratio_dbt_to_handwritten']:.2f}"),
    ("dbt RSS MB", 11, lambda r: f"{r['dbt']['peak_rss_bytes'] / MB:,.0f}"),
    ("SQL RSS MB", 11, lambda r: f"{r['handwritten']['peak_rss_bytes'] / MB:,.0f}"),
    ("ingest RSS MB", 14, lambda r: f"{r['ingest']['peak_rss_bytes'] / MB:,.0f}"),
    ("builds agree", 13, _agreement),
)


def print_summary(results: list[dict]) -> None:
    say("\n== summary (dbt/SQL goal <= 1.5; wall-clock seconds of each child process)")
    say(" ".join(f"{title:>{width}}" for title, width, _ in SUMMARY_COLUMNS))
    for result in results:
        say(" ".join(f"{cell(result):>{width}}" for _, width, cell in SUMMARY_COLUMNS))
    say(f"- {CHILD_RSS_METHOD}")
    if not all(r["builds_agree_exactly"] for r in results):
        say(
            f"- builds agree 'rounded': equal once DOUBLE columns are rounded to "
            f"1e-{ROUND_DIGITS}; parallel sum() over DOUBLE is run-dependent in its last bits"
        )
    methods = {r["ingest"]["peak_rss_method"] for r in results}
    for method in sorted(methods):
        say(f"- {method}")


def environment() -> dict:
    """Enough about the machine and versions to compare two result files."""
    versions = {}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "psutil"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "versions": versions,
        "child_rss_method": CHILD_RSS_METHOD,
    }


def say(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------- main


def parse_sizes(text: str) -> list[int]:
    """ "1000000,1e7,2_000_000" → [1000000, 10000000, 2000000]."""
    sizes = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        if part:
            sizes.append(int(float(part)) if "e" in part.lower() else int(part))
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--events needs positive sizes, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=parse_sizes,
        default=parse_sizes(DEFAULT_EVENTS),
        help=f"comma-separated sizes (default {DEFAULT_EVENTS})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the temporary homes go (default: a new temp directory)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep each size's SHOPGUIDE_HOME instead of deleting it"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON results (default bench/out/foundation.json)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not SQL_SCRIPT.exists():
        raise SystemExit(f"missing {SQL_SCRIPT}")
    if args.workdir is None:
        root, own_root = Path(tempfile.mkdtemp(prefix="shopguide-bench-")), True
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        root, own_root = args.workdir.resolve(), False
    report = {"environment": environment(), "seed": SEED, "days": DAYS, "runs": []}
    say(
        f"shopguide foundation benchmark: sizes {args.events}, work in {root}, "
        f"{report['environment']['cpus']} CPUs, "
        f"{report['environment']['memory_bytes'] / 2**30:.0f} GiB"
    )
    homes: list[Path] = []
    try:
        for events in args.events:
            homes.append(Path(tempfile.mkdtemp(prefix=f"events-{events}-", dir=root)))
            report["runs"].append(bench_size(events, homes[-1]))
            if not args.keep:  # free the disk before the next (bigger) size
                shutil.rmtree(homes[-1], ignore_errors=True)
    finally:
        if args.keep:
            say(f"\nkept {', '.join(map(str, homes))}")
        else:  # only what this run created; a given --workdir itself stays
            for path in [*homes, root] if own_root else homes:
                shutil.rmtree(path, ignore_errors=True)
    print_summary(report["runs"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    say(f"\nresults written to {args.output}")
    return 0 if all(r["builds_agree"] for r in report["runs"]) else 1


def _json_default(value: object) -> object:
    if isinstance(value, date | Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


if __name__ == "__main__":
    sys.exit(main())

"""`shopguide evaluate` at scale: 100,000 products, 1,000,000 shoppers, peak RSS goal 8 GB.

Builds a synthetic shop once under --home (default /tmp/scale_home), or with --reuse takes
the one built there before, then runs `shopguide evaluate --cutoff C --window W --json` as a
child process and prints the shop's size, each stage's wall time and peak RSS, and the
evaluation's peak RSS against the goal.

The build, one child process per stage:

1. generate: `shopguide generate --products --shoppers --events --days` into landing/;
2. ingest: a Dagster run of the nightly job's `raw_events` over every landing day;
3. dbt: a run of every dbt model (the marts evaluate reads are dim_products, dim_users and
   fct_events; a subset of the models would trip dbt's relationship tests that point into
   it from the models left out, e.g. fct_user_product_interactions → dim_users);
4. embeddings: a run of `product_embeddings`, with the deterministic hashing encoder
   (SHOPGUIDE_EMBEDDING_MODEL=hashing:384), so that encoding text does not dominate.

Each run covers the whole landing range at once, as `shopguide backfill` does, and stops
before `published_recommendations` and `user_embeddings`: evaluate reads neither. The
build's figures are kept in <home>/bench_build.json, so --reuse can show them again.

Peak RSS is that of the child's whole process tree (dbt runs as a grandchild), polled every
50 ms with psutil, together with the child's own kernel VmHWM (bench_foundation's sampler).
A stage whose tree passes --kill-above-gb is stopped, to keep a shared machine alive;
--days-per-run splits the ingest and dbt runs (their checks read the whole range at once).

    python bench/bench_evaluate_scale.py                # build the shop, then evaluate it
    python bench/bench_evaluate_scale.py --build-only   # build the shop only
    python bench/bench_evaluate_scale.py --reuse        # evaluate the shop built before
    python bench/bench_evaluate_scale.py --events 1e6 --shoppers 100000 --home /tmp/small
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

from bench_foundation import TreePeakSampler, child_env  # noqa: E402

from core.settings import Paths  # noqa: E402

DEFAULT_HOME = Path("/tmp/scale_home")
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "out" / "evaluate_scale.json"
BUILD_RECORD = "bench_build.json"
GOAL_GB = 8.0
GB = 1e9
ENCODER = "hashing:384"
STAGES = ("generate", "ingest", "dbt", "embeddings")


@dataclass
class Measured:
    stage: str
    seconds: float
    peak_rss_bytes: int
    returncode: int
    stopped: str | None  # why the bench stopped it (memory limit, timeout), else None
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def say(text: str = "") -> None:
    print(text, flush=True)


def parse_count(text: str) -> int:
    """ "1e6", "1_000_000" and "1000000" → 1000000."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    try:
        value = int(float(cleaned)) if "e" in cleaned.lower() else int(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a positive count")
    return value


# ----------------------------------------------------------------------------- children


def stage_env(paths: Paths) -> dict[str, str]:
    env = child_env(paths)
    env["SHOPGUIDE_EMBEDDING_MODEL"] = ENCODER
    # dagster-dbt runs `dbt` from PATH: make it the one beside this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_measured(
    stage: str,
    command: list[str],
    env: dict[str, str],
    log_dir: Path,
    kill_above_bytes: int | None = None,
    timeout_s: float | None = None,
) -> Measured:
    """Run a child to completion (stdout to <stage>.out, stderr to <stage>.err): wall time
    and the peak RSS of its process tree; stopped early past the memory limit or timeout."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{stage}.out", log_dir / f"{stage}.err"
    stopped = None
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        # Its own session, so that stopping it reaches dbt and any other grandchild too.
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
        sampler = TreePeakSampler(process.pid)
        sampler.start()
        try:
            while True:
                try:
                    returncode = process.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if kill_above_bytes and sampler.peak_tree > kill_above_bytes:
                    stopped = f"process tree passed {kill_above_bytes / GB:.1f} GB"
                elif timeout_s and time.perf_counter() - started > timeout_s:
                    stopped = f"still running after {timeout_s:.0f} s"
                if stopped:
                    # A child started with -X faulthandler prints its Python stack on SIGABRT.
                    os.kill(process.pid, signal.SIGABRT)
                    try:
                        process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                    kill_group(process.pid)
                    returncode = process.wait()
                    break
        except BaseException:
            kill_group(process.pid)
            process.wait()
            raise
        seconds = time.perf_counter() - started
        peak = sampler.stop()
    return Measured(stage, round(seconds, 1), peak, returncode, stopped, str(err_path))


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # the whole group has exited already
        pass


def error_line(measured: Measured) -> str:
    """One line saying how a child failed: its last exception or error message."""
    if measured.stopped:
        where = stopped_in(Path(measured.log))
        return f"stopped by the bench: {measured.stopped}" + (f", in {where}" if where else "")
    if measured.returncode < 0:
        name = signal.Signals(-measured.returncode).name
        return f"killed by {name} (SIGKILL with no message: most likely the kernel's OOM killer)"
    lines = [line.strip() for line in Path(measured.log).read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if line.startswith("error:") or (head.endswith(("Error", "Exception")) and " " not in head):
            return line
    return lines[-1] if lines else f"exit {measured.returncode}, nothing on stderr"


def stopped_in(log: Path) -> str | None:
    """The innermost frames of this repository in a faulthandler dump (most recent first)."""
    frames, dumping = [], False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Current thread") and "most recent call first" in line:
            frames, dumping = [], True
        elif dumping and not line.strip():
            dumping = False
        elif dumping and line.strip().startswith("File "):
            frames.append(line.strip())
    ours = [f for f in frames if str(REPO_ROOT) in f and "site-packages" not in f]
    shown = [f.replace(f"{REPO_ROOT}/", "").removeprefix("File ") for f in ours[:3]]
    return " ← ".join(shown) if shown else None


def fail(measured: Measured) -> None:
    raise SystemExit(f"{measured.stage} failed: {error_line(measured)} (see {measured.log})")


def stage_command(stage: str, first: date, last: date) -> list[str]:
    return [
        sys.executable,
        "-X",
        "faulthandler",
        __file__,
        "--run-stage",
        stage,
        "--first",
        str(first),
        "--last",
        str(last),
    ]


def run_stage(stage: str, first: date, last: date) -> int:
    """In a child: one Dagster run of the nightly job's assets for this stage, whole range."""
    from dagster import AssetSelection

    from core.dbt_manifest import ensure_manifest
    from shopguide.runner import run_range

    selections = {
        "ingest": AssetSelection.assets("raw_events"),
        "dbt": AssetSelection.kind("dbt"),
        "embeddings": AssetSelection.assets("product_embeddings"),
    }
    ensure_manifest()
    outcome = run_range(Paths.from_env(), first, last, selection=selections[stage])
    print(json.dumps({"run_id": outcome.run_id, "success": outcome.success, "failed": outcome.failed_checks}))
    for check in outcome.failed_checks:
        print(f"error: blocking check failed: {check}", file=sys.stderr)
    if not outcome.success:
        print(f"error: run {outcome.run_id} failed (see the Dagster UI for this home)", file=sys.stderr)
    return 0 if outcome.success else 1


# ----------------------------------------------------------------------------- build


def build(args: argparse.Namespace, paths: Paths) -> dict:
    """Generate the landing files and run the pipeline up to what evaluate reads."""
    from warehouse.landing import landing_days

    env, logs = stage_env(paths), paths.home / "bench_logs"
    shop = {
        "products": args.products,
        "shoppers": args.shoppers,
        "events": args.events,
        "days": args.days,
        "start_date": str(args.start_date),
        "seed": args.seed,
        "days_per_run": args.days_per_run or "all",
    }
    say(
        f"building under {paths.home}: {args.products:,} products, {args.shoppers:,} shoppers, "
        f"{args.events:,} events over {args.days} days from {args.start_date} (encoder {ENCODER})"
    )
    generate = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "shopguide.cli",
        "generate",
        *("--events", str(args.events), "--products", str(args.products)),
        *("--shoppers", str(args.shoppers), "--days", str(args.days)),
        *("--start-date", str(args.start_date), "--seed", str(args.seed)),
    ]
    stages = [run_measured("generate", generate, env, logs, int(args.kill_above_gb * GB))]
    report_stage(stages[-1])
    if not stages[-1].ok:
        fail(stages[-1])
    days = landing_days(paths.landing)  # late lines and duplicates land up to 5 days after the last day
    per_run = args.days_per_run or len(days)
    ranges = [(days[i], days[min(i + per_run, len(days)) - 1]) for i in range(0, len(days), per_run)]
    for stage in ("ingest", "dbt", "embeddings"):
        # The vectors follow dim_products whatever the range: one run covers them.
        chunks = ranges if stage != "embeddings" else [(days[0], days[-1])]
        stages.append(run_chunks(stage, chunks, env, logs, int(args.kill_above_gb * GB)))
        report_stage(stages[-1])
        if not stages[-1].ok:
            fail(stages[-1])
    record = {
        "shop": shop,
        "landing_days": [str(days[0]), str(days[-1])],
        "runs_per_stage": len(ranges),
        "built_at": datetime.now().isoformat(timespec="seconds"),
        "stages": [asdict(s) for s in stages],
    }
    (paths.home / BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def run_chunks(
    stage: str, chunks: list[tuple[date, date]], env: dict[str, str], logs: Path, kill_above_bytes: int
) -> Measured:
    """One Dagster run per range of landing days, in order: total time, highest peak."""
    runs = []
    for first, last in chunks:
        runs.append(run_measured(stage, stage_command(stage, first, last), env, logs, kill_above_bytes))
        if not runs[-1].ok:
            break
    return Measured(
        stage,
        round(sum(run.seconds for run in runs), 1),
        max(run.peak_rss_bytes for run in runs),
        runs[-1].returncode,
        runs[-1].stopped,
        runs[-1].log,
    )


def report_stage(measured: Measured) -> None:
    state = "ok" if measured.ok else f"FAILED: {error_line(measured)}"
    peak = measured.peak_rss_bytes / GB
    say(f"  {measured.stage:<11} {measured.seconds:>8.1f} s  peak RSS {peak:6.2f} GB  {state}")


def prepare_home(args: argparse.Namespace) -> Paths:
    paths = Paths(args.home.expanduser().resolve())
    if args.reuse:
        if not paths.warehouse.exists():
            raise SystemExit(
                f"--reuse: no warehouse at {paths.warehouse}; build the shop first (no --reuse)."
            )
        return paths.ensure()
    if paths.home.exists() and any(paths.home.iterdir()):
        looks_like_home = (paths.home / "landing").is_dir() or (paths.home / BUILD_RECORD).exists()
        if not (args.rebuild and looks_like_home):
            raise SystemExit(
                f"{paths.home} is not empty: pass --reuse to evaluate the shop there, or --rebuild "
                "to delete it and build again (only a folder holding a shopguide home)."
            )
        shutil.rmtree(paths.home)
    return paths.ensure()


# ----------------------------------------------------------------------------- the shop


def shop_size(paths: Paths, window: int) -> dict:
    """What the warehouse and LanceDB hold, and the split evaluate will use."""
    from embeddings.store import PRODUCT_TABLE, open_table
    from embeddings.store import connect as connect_lancedb
    from warehouse.store import connect

    with connect(paths.warehouse, read_only=True) as con:
        products, listed, shoppers, buyers, events, last = con.sql(
            """
            select
                (select count(*) from dim_products),
                (select count(*) filter (where is_listed) from dim_products),
                (select count(*) from dim_users),
                (select count(distinct user_id) from fct_events
                 where user_id is not null and event_type = 'purchase'),
                (select count(*) from fct_events),
                (select max(occurred_at) from fct_events where product_id is not null)
            """
        ).fetchall()[0]
        cutoff = last.date() + timedelta(days=1) - timedelta(days=window)  # evaluate's default
        window_buyers = """
            select count(distinct user_id) from fct_events
            where user_id is not null and event_type = 'purchase'
              and occurred_at >= ? and occurred_at < ?
        """

        def buyers_between(start: date) -> int:
            return con.execute(window_buyers, [start, start + timedelta(days=window)]).fetchall()[0][0]

        test, validation = buyers_between(cutoff), buyers_between(cutoff - timedelta(days=window))
    table = open_table(connect_lancedb(paths.lancedb_uri), PRODUCT_TABLE)
    return {
        "products": products,
        "listed_products": listed,
        "signed_in_shoppers": shoppers,
        "shoppers_with_purchases": buyers,
        "events": events,
        "product_vectors": table.count_rows() if table is not None else 0,
        "cutoff": str(cutoff),
        "window_days": window,
        "validation_buyers": validation,
        "test_buyers": test,
    }


# ----------------------------------------------------------------------------- main


def evaluate(args: argparse.Namespace, paths: Paths, size: dict) -> tuple[Measured, dict | None]:
    command = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "shopguide.cli",
        "evaluate",
        *("--cutoff", size["cutoff"], "--window", str(size["window_days"]), "--json"),
    ]
    say(f"\nrunning: shopguide {' '.join(command[5:])}  (stopped past {args.kill_above_gb:g} GB)")
    measured = run_measured(
        "evaluate",
        command,
        stage_env(paths),
        paths.home / "bench_logs",
        kill_above_bytes=int(args.kill_above_gb * GB),
        timeout_s=args.timeout,
    )
    result = None
    if measured.ok:
        result = json.loads((paths.home / "bench_logs" / "evaluate.out").read_text())
    return measured, result


def print_summary(shop: dict, size: dict, build_record: dict | None, measured: Measured, result) -> None:
    say("\n== shop")
    if shop:
        say(
            f"generated: {shop['products']:,} products, {shop['shoppers']:,} shoppers, "
            f"{shop['events']:,} events over {shop['days']} days from {shop['start_date']}"
        )
    say(
        f"in the warehouse: {size['products']:,} products ({size['listed_products']:,} listed, "
        f"{size['product_vectors']:,} vectors), {size['signed_in_shoppers']:,} signed-in shoppers "
        f"({size['shoppers_with_purchases']:,} with purchases), {size['events']:,} events"
    )
    say(
        f"split: cutoff {size['cutoff']}, {size['window_days']}-day windows; signed-in shoppers "
        f"buying in the validation window {size['validation_buyers']:,}, in the test window "
        f"{size['test_buyers']:,}"
    )
    say("\n== stages           wall s   peak RSS")
    stages = [Measured(**s) for s in build_record["stages"]] if build_record else []
    for stage in [*stages, measured]:
        say(f"  {stage.stage:<13} {stage.seconds:>10.1f}   {stage.peak_rss_bytes / GB:6.2f} GB")
    if build_record:
        total = sum(s.seconds for s in stages)
        say(f"  {'build total':<13} {total:>10.1f}   (built {build_record['built_at']})")
    ratio = measured.peak_rss_bytes / (GOAL_GB * GB)
    say("\n== evaluate")
    say(f"wall time {measured.seconds:.1f} s, peak RSS {measured.peak_rss_bytes / GB:.2f} GB")
    bound = ", a lower bound: it was stopped" if measured.stopped else ""
    say(
        f"peak RSS / {GOAL_GB:g} GB goal = {ratio:.2f} ({'within' if ratio <= 1 else 'OVER'} the goal{bound})"
    )
    if measured.ok:
        split = result.get("split", {})
        say(f"evaluate's own time {result.get('seconds')} s; test shoppers {split.get('test_users')}")
    else:
        say(f"FAILED (exit {measured.returncode}): {error_line(measured)}")
        say(f"stderr: {measured.log}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--home", type=Path, default=DEFAULT_HOME, help=f"SHOPGUIDE_HOME (default {DEFAULT_HOME})"
    )
    parser.add_argument("--reuse", action="store_true", help="evaluate the shop already built in --home")
    parser.add_argument(
        "--rebuild", action="store_true", help="delete a shop already in --home and build again"
    )
    parser.add_argument("--build-only", action="store_true", help="build the shop, don't evaluate it")
    parser.add_argument("--products", type=parse_count, default=100_000)
    parser.add_argument("--shoppers", type=parse_count, default=1_000_000)
    parser.add_argument("--events", type=parse_count, default=10_000_000, help="generated events (max 1e7)")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--start-date", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--window", type=int, default=14, help="evaluate's --window (days)")
    parser.add_argument(
        "--days-per-run",
        type=int,
        default=0,
        help="landing days per ingest/dbt run (default 0: all in one run, as `shopguide backfill`)",
    )
    parser.add_argument(
        "--kill-above-gb", type=float, default=14.0, help="stop any stage past this tree RSS (default 14)"
    )
    parser.add_argument(
        "--timeout", type=float, default=4 * 3600, help="stop evaluate after this many seconds"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results")
    # Internal: one pipeline stage, run by the bench in a child process.
    parser.add_argument("--run-stage", choices=STAGES[1:], help=argparse.SUPPRESS)
    parser.add_argument("--first", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--last", type=date.fromisoformat, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_stage:
        return run_stage(args.run_stage, args.first, args.last)
    paths = prepare_home(args)
    if args.reuse:
        record_path = paths.home / BUILD_RECORD
        build_record = json.loads(record_path.read_text()) if record_path.exists() else None
    else:
        build_record = build(args, paths)
        if args.build_only:
            say(f"\nbuilt; evaluate it with --reuse --home {paths.home}")
            return 0
    shop = build_record["shop"] if build_record else {}
    size = shop_size(paths, args.window)
    measured, result = evaluate(args, paths, size)
    print_summary(shop, size, build_record, measured, result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "home": str(paths.home),
        "goal_bytes": int(GOAL_GB * GB),
        "shop": shop,
        "size": size,
        "build": build_record,
        "evaluate": {**asdict(measured), "error": None if measured.ok else error_line(measured)},
        "evaluate_seconds_own": result.get("seconds") if result else None,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    say(f"\nresults written to {args.output}")
    return 0 if measured.ok and measured.peak_rss_bytes <= GOAL_GB * GB else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the nightly pipeline on the shipped Online Retail data: where every second goes.

Why it exists: issue 15 asks for the demo's pipeline part (541,909 lines, 305 landing days,
one Dagster run) in ≤ 60 s and one new day after a full history in ≤ 15 s on a 2-core
machine, with a table of the steps and of Dagster's own overhead. It measures, each in a
fresh temporary SHOPGUIDE_HOME holding only the imported landing files (the import is not
timed):

1. **full**: `run_range(first, last)` over all 305 days, as `shopguide demo` does;
2. **new day**: in another home, the full history up to the day before the last, then
   `run_range(last, last)`, as `shopguide run --date` does the next night (only the second
   run is the figure).

Each run is a child process (`python bench/bench_pipeline.py --child ...`) so that its peak
RSS (its process tree: dbt is a grandchild) and its CPU seconds (user + sys of the tree,
from getrusage(RUSAGE_CHILDREN)) are its own. The child reads its run back from the Dagster
instance and reports, per step, the step's seconds and the events it wrote, and the time
before the first step started (Dagster writing its "planned" events and launching the run)
and after the last one finished. The machine's load average is sampled during each run:
the figures of a shared machine mean little without it. The headline figure, "pipeline", is
what `shopguide run` over the range costs: the process start and `run_range` (the child's
wall time less the seconds this bench then spends reading the run back).

    python bench/bench_pipeline.py                 # full + new day (~2 x the full run)
    python bench/bench_pipeline.py --only full     # or: --only new-day
    python bench/bench_pipeline.py --keep --workdir /tmp/sg-pipe

Prints the step table and writes bench/out/pipeline.json; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

import psutil  # noqa: E402
from bench_foundation import run_child  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "out" / "pipeline.json"
LOAD_EVERY = 2.0  # seconds between load-average samples
CPU_EVERY = 0.5  # seconds between CPU samples in the child
PLANNED = ("ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED")


def child(home: str, first: str, last: str, out: str) -> None:
    """In a child process: one Dagster run over first..last, then its event log analysed."""
    from core.settings import Paths
    from shopguide.runner import run_range

    paths = Paths(Path(home))
    cpu = CpuSampler()
    cpu.start()
    started = time.time()
    outcome = run_range(paths, date.fromisoformat(first), date.fromisoformat(last))
    finished = time.time()
    cpu.stop()
    report = {
        "run_seconds": finished - started,
        "started_at": started,
        "success": outcome.success,
        "run_id": outcome.run_id,
    }
    report.update(analyse(outcome.run_id, started, finished))
    # CPU seconds per step: on a shared machine a step's wall time says little on its own.
    for row in report["steps"]:
        row["cpu_seconds"] = cpu.between(started + row["start"], started + row["start"] + row["seconds"])
    report["cpu_before_run"] = cpu.between(started, started + report["before_run"])
    report["cpu_before_first_step"] = cpu.between(
        started + report["before_run"], started + report["before_first_step"]
    )
    report["failed_checks"] = outcome.failed_checks
    report["dbt_elapsed_seconds"] = dbt_elapsed(paths, started)
    Path(out).write_text(json.dumps(report, indent=1))


class CpuSampler(threading.Thread):
    """CPU seconds (user + sys) of this process and its children, sampled with the time."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()

    def _cpu(self, me) -> float:
        t = me.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system  # waited children (dbt)
        for kid in me.children(recursive=True):  # and the ones still running
            try:
                k = kid.cpu_times()
                total += k.user + k.system
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        me = psutil.Process()
        while not self._done.is_set():
            self.samples.append((time.time(), self._cpu(me)))
            self._done.wait(CPU_EVERY)
        self.samples.append((time.time(), self._cpu(me)))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def between(self, start: float, end: float) -> float:
        def at(when: float) -> float:
            earlier = [cpu for t, cpu in self.samples if t <= when]
            return earlier[-1] if earlier else 0.0

        return round(at(end) - at(start), 1)


def dbt_elapsed(paths, since: float) -> float | None:
    """dbt's own elapsed time (run_results.json) of the invocation this run started, so the
    dbt step splits into dbt's work and what Dagster spends around it."""
    results = [p for p in paths.dbt_target("duckdb").glob("run_results.json") if p.stat().st_mtime >= since]
    if not results:
        return None
    newest = max(results, key=lambda p: p.stat().st_mtime)
    return round(json.loads(newest.read_text())["elapsed_time"], 2)


def analyse(run_id: str, started: float, finished: float) -> dict:
    """Seconds per step and Dagster's share, from the run's own event log."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        records = instance.all_logs(run_id)
        created = instance.get_run_record_by_id(run_id).create_timestamp.timestamp()
    steps: dict[str, dict] = {}
    outside = Counter()  # events written outside any step: planned events, run start and end
    for record in records:
        event = record.dagster_event
        kind = event.event_type_value if event else "log"
        step = record.step_key
        # Planned events carry their step's key but are written before the run starts.
        if not step or kind in PLANNED:
            outside[kind] += 1
            continue
        info = steps.setdefault(step, {"events": Counter(), "start": None, "end": None})
        info["events"][kind] += 1
        if kind == "STEP_START":
            info["start"] = record.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            info["end"] = record.timestamp
        if kind == "ASSET_MATERIALIZATION":
            info.setdefault("first_materialization", record.timestamp)
            info["last_materialization"] = record.timestamp
    table = []
    for name, info in steps.items():
        if info["start"] is None:
            continue
        end = info["end"] or info["start"]
        row = {
            "step": name,
            "start": round(info["start"] - started, 2),
            "seconds": round(end - info["start"], 2),
            "events": sum(info["events"].values()),
            "materializations": info["events"]["ASSET_MATERIALIZATION"],
            "check_evaluations": info["events"]["ASSET_CHECK_EVALUATION"],
        }
        if "first_materialization" in info:
            # From the first materialisation event to the step's end: mostly recording.
            row["recording_seconds"] = round(end - info["first_materialization"], 2)
        table.append(row)
    table.sort(key=lambda r: r["start"])
    first_step = min((r["start"] for r in table), default=0.0)
    last_end = max((r["start"] + r["seconds"] for r in table), default=0.0)
    return {
        "steps": table,
        # run_range's own work before Dagster creates the run: loading the definitions (they
        # import dbt, LanceDB, torch...), the orphaned-run check, the status figures.
        "before_run": round(created - started, 2),
        "before_first_step": round(first_step, 2),
        "after_last_step": round(finished - started - last_end, 2),
        "events_outside_steps": dict(outside),
        "events_total": len(records),
    }


def import_landing(workdir: Path) -> Path:
    """The Online Retail landing files, imported once; every run copies them."""
    from shopguide.sources.online_retail import DEFAULT_PATH, import_online_retail

    source = workdir / "landing"
    if not source.exists():
        import_online_retail(source, DEFAULT_PATH)
    return source


def fresh_home(workdir: Path, name: str, landing: Path) -> Path:
    home = workdir / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copytree(landing, home / "landing")
    return home


class LoadSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append(os.getloadavg()[0])
            self._done.wait(LOAD_EVERY)

    def stop(self) -> dict:
        self._done.set()
        self.join()
        s = self.samples or [os.getloadavg()[0]]
        return {"min": round(min(s), 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


def measure(home: Path, first: date, last: date, label: str) -> dict:
    """One child run: wall, CPU (user + sys of the tree), peak RSS, load, the step table."""
    out = home / f"{label}.json"
    env = {**os.environ, "SHOPGUIDE_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, __file__, "--child", str(home), first.isoformat(), last.isoformat(), str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = LoadSampler()
    load.start()
    launched = time.time()
    run = run_child(command, env=env, log=home / f"{label}.log")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0 or not out.exists():
        raise SystemExit(
            f"{label} failed (exit {run.returncode}):\n{Path(run.log).read_text(errors='replace')[-4000:]}"
        )
    report = json.loads(out.read_text())
    report.update(
        label=label,
        wall_seconds=round(run.seconds, 2),
        cpu_user_seconds=round(after.ru_utime - before.ru_utime, 2),
        cpu_sys_seconds=round(after.ru_stime - before.ru_stime, 2),
        peak_rss_gb=round(run.peak_rss_bytes / 1e9, 2),
        load_average=load.stop(),
        # From the launch to run_range's clock: the interpreter and the bench's own imports
        # (`shopguide run` starts in ~0.2 s; the definitions load inside run_range).
        process_start_seconds=round(report["started_at"] - launched, 2),
    )
    # What a `shopguide run` of this range costs: the process start and run_range. The rest
    # of the child's wall time is this bench reading the run back from the event log.
    report["pipeline_seconds"] = round(report["process_start_seconds"] + report["run_seconds"], 2)
    report["bench_readback_seconds"] = round(run.seconds - report["pipeline_seconds"], 2)
    return report


def render(report: dict) -> str:
    lines = [
        f"== {report['label']}: pipeline {report['pipeline_seconds']:.1f} s (process start "
        f"{report['process_start_seconds']:.1f} + run_range {report['run_seconds']:.1f}); child wall "
        f"{report['wall_seconds']:.1f} s with the bench's read-back {report['bench_readback_seconds']:.1f} s "
        f"(cpu user {report['cpu_user_seconds']:.1f} + sys {report['cpu_sys_seconds']:.1f} s), "
        f"peak RSS {report['peak_rss_gb']:.2f} GB, load avg {report['load_average']}, "
        f"success {report['success']}",
        f"  {'step':<40}{'start':>8}{'seconds':>9}{'cpu s':>7}{'events':>8}{'mat.':>7}{'checks':>7}"
        f"{'recording':>10}",
        f"  {'process start, imports':<40}{'':>8}{report['process_start_seconds']:>9.1f}",
        f"  {'before the run (definitions, checks)':<40}{0:>8.1f}{report['before_run']:>9.1f}"
        f"{report.get('cpu_before_run', ''):>7}",
        f"  {'before the first step (Dagster)':<40}{report['before_run']:>8.1f}"
        f"{report['before_first_step'] - report['before_run']:>9.1f}"
        f"{report.get('cpu_before_first_step', ''):>7}{sum(report['events_outside_steps'].values()):>8}",
    ]
    for r in report["steps"]:
        recording = f"{r['recording_seconds']:.1f}" if "recording_seconds" in r else ""
        lines.append(
            f"  {r['step'][:39]:<40}{r['start']:>8.1f}{r['seconds']:>9.1f}{r.get('cpu_seconds', ''):>7}"
            f"{r['events']:>8}"
            f"{r['materializations']:>7}{r['check_evaluations']:>7}{recording:>10}"
        )
    lines.append(f"  {'after the last step (Dagster)':<40}{'':>8}{report['after_last_step']:>9.1f}")
    lines.append(f"  events outside steps: {report['events_outside_steps']}")
    lines.append(f"  dbt's own elapsed time (run_results.json): {report.get('dbt_elapsed_seconds')} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("full", "new-day"))
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sg-bench-pipeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    landing = import_landing(workdir)
    from warehouse.landing import landing_days

    days = landing_days(landing)
    reports = []
    if args.only in (None, "full"):
        home = fresh_home(workdir, "full", landing)
        reports.append(measure(home, days[0], days[-1], "full"))
        print(render(reports[-1]), flush=True)
    if args.only in (None, "new-day"):
        home = fresh_home(workdir, "new_day", landing)
        history = measure(home, days[0], days[-1] - timedelta(days=1), "history")
        print(render(history), flush=True)
        reports.append(measure(home, days[-1], days[-1], "new_day"))
        print(render(reports[-1]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"cpus": os.cpu_count(), "runs": reports}, indent=1))
    print(f"written {args.output}")
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Scale benchmark: the nightly job's full backfill on synthetic shops of 1M, 3M (and 10M)
events, then one new day on the 1M shop.

Why it exists: issue 15's goals (a 10M backfill within 30 min and 8 GB, cost(10M)/cost(1M)
<= 11, a new day in seconds) need one repeatable measurement that says where the time and
memory go, step by step, and which step grows faster than the data.

For each size, in a fresh SHOPGUIDE_HOME under --workdir:
1. `shopguide generate --events N --days 34` (10M: `--products 100000 --shoppers 1000000`;
   smaller shops take generate's defaults: events / 200 products, events / 50 shoppers);
2. `shopguide backfill` over every landing day, as a child process: its wall time, and the
   peak RSS of its whole process tree (dbt runs as a grandchild), sampled from /proc every
   0.25 s; per Dagster step, the seconds between the step's STEP_START and STEP_SUCCESS (or
   STEP_FAILURE) in the run's event log, the step's own `dagster/row_count` where it reports
   one (else the run's landed lines) and rows/s, and the tree's peak RSS while the step ran.
   "start-up" is the child's start to RUN_START (imports, definitions, the dbt manifest);
   "run overhead" is the rest of the run outside any step (planning, event writes).
Then, on the smallest shop: `shopguide generate --continue --days 1` and `shopguide run
--date <that day>`, measured the same way.

Ratios: cost(NM)/cost(smallest) per step and in total, beside the events ratio; a step
whose time ratio exceeds the events ratio by more than 15 % is marked as growing faster
than linearly. Nothing is asserted; the exit status is 1 only when a child fails.

    python bench/bench_scale.py                       # 1M and 3M, ~10-20 min on 2 cores
    python bench/bench_scale.py --sizes 1M --json     # the figures as JSON on stdout
    python bench/bench_scale.py --sizes 1M,3M,10M     # 10M: 100k products x 1M shoppers, long
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

from bench_foundation import child_env  # noqa: E402

from core.settings import Paths  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "out" / "scale.json"
DAYS = 34  # the shape issue 15 measured
SHAPES = {10_000_000: (100_000, 1_000_000)}  # events -> (products, shoppers); others: defaults
SAMPLE_SECONDS = 0.25
SUPERLINEAR_SLACK = 1.15
GIB = 1024**3  # peaks are printed in GiB (the 8 GB goal is 7.45 GiB)
PAGE = os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------- memory


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:  # exited while we listed
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its ")".
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, from /proc (statm: pages)."""
    children, total, stack = _children_by_parent(), 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total


class TreeSampler(threading.Thread):
    """(wall time, tree RSS) every SAMPLE_SECONDS while the child runs, so a step's peak is
    the largest sample inside its start..end; the root's VmHWM catches a spike between two."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self.root_hwm = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append((time.time(), tree_rss(self.pid)))
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.root_hwm = max(self.root_hwm, int(line.split()[1]) * 1024)
            except OSError:
                pass
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside, default=0)

    def first(self, start: float) -> int:
        """The first sample at or after `start`: what a step found resident when it began."""
        return next((rss for t, rss in self.samples if t >= start), 0)


# ----------------------------------------------------------------------------- children


@dataclass
class Child:
    name: str
    seconds: float
    started_at: float  # wall clock (time.time), to line up with Dagster's event timestamps
    peak_rss_bytes: int
    returncode: int
    log: str
    sampler: TreeSampler = field(repr=False)


def run_child(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        started_at, started = time.time(), time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(process.pid)
        sampler.start()
        returncode = process.wait()
        seconds = time.perf_counter() - started
        sampler.stop()
    peak = max(sampler.peak(), sampler.root_hwm)
    # The whole series, to place a peak inside a step (against the run's log timestamps).
    series = "".join(f"{t:.2f}\t{rss}\n" for t, rss in sampler.samples)
    (log_dir / f"{name}-rss.tsv").write_text("unix_time\ttree_rss_bytes\n" + series)
    return Child(name, round(seconds, 1), started_at, peak, returncode, str(log), sampler)


def shopguide(*args: str) -> list[str]:
    """The CLI as a user runs it: the venv's console script beside this interpreter."""
    script = Path(sys.executable).with_name("shopguide")
    return [str(script) if script.exists() else "shopguide", *args]


def require(child: Child) -> None:
    if child.returncode != 0:
        tail = Path(child.log).read_text(errors="replace")[-3000:]
        raise SystemExit(f"{child.name} failed (exit {child.returncode}); end of {child.log}:\n{tail}")


# ----------------------------------------------------------------------------- Dagster's record


def run_steps(paths: Paths, child: Child, fallback_rows: int) -> dict:
    """The latest run's steps from its event log: seconds, rows, rows/s, peak tree RSS."""
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        records = instance.all_logs(run.run_id)
    run_start = run_end = None
    steps: dict[str, dict] = {}
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        kind, key = event.event_type, event.step_key
        if kind == DagsterEventType.RUN_START:
            run_start = record.timestamp
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            run_end = record.timestamp
        elif key is None:
            continue
        elif kind == DagsterEventType.STEP_START:
            steps[key] = {"start": record.timestamp, "end": None, "rows": None, "materialisations": 0}
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and key in steps:
            steps[key]["end"] = record.timestamp
            steps[key]["ok"] = kind == DagsterEventType.STEP_SUCCESS
        elif kind == DagsterEventType.ASSET_MATERIALIZATION and key in steps:
            steps[key]["materialisations"] += 1
            count = event.event_specific_data.materialization.metadata.get("dagster/row_count")
            if count is not None:
                steps[key]["rows"] = max(steps[key]["rows"] or 0, int(count.value))
    out = []
    in_steps = 0.0
    for key, step in sorted(steps.items(), key=lambda item: item[1]["start"]):
        end = step["end"] or run_end or step["start"]
        seconds = end - step["start"]
        in_steps += seconds
        rows = step["rows"] if step["rows"] is not None else fallback_rows
        out.append(
            {
                "step": key,
                "seconds": round(seconds, 1),
                "rows": rows,
                "rows_source": "step" if step["rows"] is not None else "landed lines",
                "rows_per_s": round(rows / seconds) if seconds > 0 else None,
                "peak_rss_bytes": child.sampler.peak(step["start"], end),
                "rss_at_start_bytes": child.sampler.first(step["start"]),
                "materialisations": step["materialisations"],
                "ok": step.get("ok", False),
            }
        )
    startup = (run_start - child.started_at) if run_start else None
    overhead = (run_end - run_start - in_steps) if run_start and run_end else None
    return {
        "run_id": run.run_id,
        "status": str(run.status.value),
        "startup_s": round(startup, 1) if startup is not None else None,
        "run_overhead_s": round(overhead, 1) if overhead is not None else None,
        "steps": out,
    }


# ----------------------------------------------------------------------------- one shop


def landed_lines(landing: Path) -> int:
    total = 0
    for path in landing.glob("*/*.jsonl"):
        with path.open("rb") as handle:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda h=handle: h.read(1 << 20), b""))
    return total


def landing_span(landing: Path) -> tuple[date, date]:
    days = sorted(date.fromisoformat(p.name) for p in landing.iterdir() if p.is_dir())
    return days[0], days[-1]


def bench_shop(events: int, home: Path, env_extra: dict[str, str], new_day: bool) -> dict:
    paths = Paths(home).ensure()
    env = {**child_env(paths), **env_extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # dbt beside us
    logs = home / "bench-logs"
    logs.mkdir(exist_ok=True)
    args = ["generate", "--events", str(events), "--days", str(DAYS)]
    if events in SHAPES:
        products, shoppers = SHAPES[events]
        args += ["--products", str(products), "--shoppers", str(shoppers)]
    say(f"[{label(events)}] generate ...")
    generated = run_child("generate", shopguide(*args), env, logs)
    require(generated)
    lines = landed_lines(paths.landing)
    first, last = landing_span(paths.landing)
    say(f"[{label(events)}] generated {lines:,} lines, {first}..{last} in {generated.seconds:.0f} s")
    backfill = run_child(
        "backfill", shopguide("backfill", "--start", first.isoformat(), "--end", last.isoformat()), env, logs
    )
    result = {
        "events": events,
        "shape": SHAPES.get(events),
        "landed_lines": lines,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "generate": summary(generated),
        "backfill": {**summary(backfill), **run_steps(paths, backfill, lines)},
    }
    say(f"[{label(events)}] backfill {backfill.seconds:.0f} s, exit {backfill.returncode}")
    require(backfill)
    if new_day:
        before = set(p.name for p in paths.landing.iterdir() if p.is_dir())
        extended = run_child("continue", shopguide("generate", "--continue", "--days", "1"), env, logs)
        require(extended)
        added = sorted(set(p.name for p in paths.landing.iterdir() if p.is_dir()) - before)
        day = added[0]
        day_lines = landed_lines_of(paths.landing / day)
        say(f"[{label(events)}] new day {day} ({day_lines:,} lines); run --date ...")
        nightly = run_child("run", shopguide("run", "--date", day), env, logs)
        result["new_day"] = {
            "date": day,
            "landed_lines": day_lines,
            "generate": summary(extended),
            "run": {**summary(nightly), **run_steps(paths, nightly, day_lines)},
        }
        require(nightly)
    return result


def landed_lines_of(folder: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl"))


def summary(child: Child) -> dict:
    return {
        "seconds": child.seconds,
        "peak_rss_bytes": child.peak_rss_bytes,
        "returncode": child.returncode,
        "log": child.log,
    }


# ----------------------------------------------------------------------------- report


def label(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"


def say(text: str = "") -> None:
    print(text, file=sys.stderr if ARGS_JSON else sys.stdout, flush=True)


def print_run(title: str, run: dict) -> None:
    say(f"  {title}: {run['seconds']:.1f} s wall, peak RSS (tree) {run['peak_rss_bytes'] / GIB:.2f} GiB")
    say(f"    {'step':<34} {'s':>7} {'rows':>11} {'rows/s':>9} {'in GiB':>7} {'peak GiB':>8} {'mat.':>5}")
    say(f"    {'start-up (imports, definitions)':<34} {run['startup_s'] or 0:>7.1f}")
    say(f"    {'run overhead (outside steps)':<34} {run['run_overhead_s'] or 0:>7.1f}")
    for step in run["steps"]:
        rows = f"{step['rows']:,}" + ("" if step["rows_source"] == "step" else "*")
        say(
            f"    {step['step'][:34]:<34} {step['seconds']:>7.1f} {rows:>11} "
            f"{step['rows_per_s'] or 0:>9,} {step['rss_at_start_bytes'] / GIB:>7.2f} "
            f"{step['peak_rss_bytes'] / GIB:>8.2f} "
            f"{step['materialisations']:>5}"
        )


def ratios(results: list[dict]) -> dict:
    """cost(N)/cost(smallest) per step and in total; faster than linear when the time ratio
    exceeds the events ratio by more than SUPERLINEAR_SLACK."""
    base = results[0]
    base_steps = {s["step"]: s for s in base["backfill"]["steps"]}
    out = {}
    for result in results[1:]:
        scale = result["events"] / base["events"]
        steps = {}
        for step in result["backfill"]["steps"]:
            reference = base_steps.get(step["step"])
            if not reference or reference["seconds"] <= 0:
                continue
            ratio = step["seconds"] / reference["seconds"]
            steps[step["step"]] = {
                "time_ratio": round(ratio, 2),
                "rss_ratio": round(step["peak_rss_bytes"] / max(reference["peak_rss_bytes"], 1), 2),
                "superlinear": ratio > scale * SUPERLINEAR_SLACK,
            }
        out[label(result["events"])] = {
            "events_ratio": round(scale, 2),
            "total_ratio": round(result["backfill"]["seconds"] / base["backfill"]["seconds"], 2),
            "peak_rss_ratio": round(
                result["backfill"]["peak_rss_bytes"] / base["backfill"]["peak_rss_bytes"], 2
            ),
            "steps": steps,
        }
    return out


def print_report(report: dict) -> None:
    say(f"\nload average at start {report['load_average_start']}, at end {report['load_average_end']}")
    for result in report["shops"]:
        shape = result["shape"] or ("default", "default")
        say(
            f"\n{label(result['events'])} events ({result['landed_lines']:,} lines, products {shape[0]}, "
            f"shoppers {shape[1]}, {result['first_day']}..{result['last_day']}); generate "
            f"{result['generate']['seconds']:.0f} s"
        )
        print_run("backfill", result["backfill"])
        if "new_day" in result:
            day = result["new_day"]
            print_run(f"new day {day['date']} ({day['landed_lines']:,} lines), run --date", day["run"])
    for size, ratio in report["ratios"].items():
        say(
            f"\n{size}/{label(report['shops'][0]['events'])}: events x{ratio['events_ratio']}, "
            f"backfill time x{ratio['total_ratio']}, peak RSS x{ratio['peak_rss_ratio']}"
        )
        for step, figures in ratio["steps"].items():
            mark = "  <- faster than linear" if figures["superlinear"] else ""
            say(f"    {step[:34]:<34} time x{figures['time_ratio']:<6} RSS x{figures['rss_ratio']}{mark}")
    say("* rows: the run's landed lines (the step reports no dagster/row_count)")


# ----------------------------------------------------------------------------- main

ARGS_JSON = False


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().upper()
        scale = {"K": 1_000, "M": 1_000_000}.get(part[-1:], 1)
        sizes.append(int(float(part.rstrip("KM")) * scale))
    return sorted(sizes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1M,3M"), help="e.g. 1M,3M,10M")
    parser.add_argument("--workdir", type=Path, help="where the homes go (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the homes")
    parser.add_argument("--no-new-day", action="store_true", help="skip the new day on the smallest shop")
    parser.add_argument("--encoder", help="SHOPGUIDE_EMBEDDING_MODEL for the runs (default: the shipped one)")
    parser.add_argument(
        "--json", action="store_true", help="the report as JSON on stdout (progress on stderr)"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file (git-ignored bench/out)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global ARGS_JSON
    args = parse_args(argv)
    ARGS_JSON = args.json
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sg-scale-"))
    env_extra = {"SHOPGUIDE_EMBEDDING_MODEL": args.encoder} if args.encoder else {}
    report = {
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "days": DAYS,
        "encoder": args.encoder or "default",
        "shops": [],
    }
    try:
        for index, events in enumerate(args.sizes):
            home = workdir / f"home-{label(events)}"
            shutil.rmtree(home, ignore_errors=True)
            new_day = index == 0 and not args.no_new_day
            report["shops"].append(bench_shop(events, home, env_extra, new_day))
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
    finally:
        report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        report["ratios"] = ratios(report["shops"]) if report["shops"] else {}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, default=_json_default))
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, default=_json_default))
    else:
        print_report(report)
    return 0


def _json_default(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())

"""The nightly publish step alone, phase by phase, on an existing home.

Why it exists: at 10M events (100k products, 1M shoppers) `published_recommendations` took
1,348 s of a 1,663 s backfill (issue 15). This runs the asset's own plain function
(`assets.recommendations.build_and_publish`) on a home that a backfill left
(`bench/bench_scale.py --keep`), and prints each phase's wall and CPU seconds (user + sys of
the whole process: a phase run on worker threads shows its wall time summed over them) and
the process's RSS when the phase began, its peak while it ran (sampled from /proc every
0.1 s) and when it ended, so that the cost can be found without a Dagster run.

What matches the nightly run, and what does not: the same function on the newest landing
day, with the resources' default settings; `--train` hands it a model folder without
models, so the ranker is trained as on a first night (otherwise the backfill's saved model
is used). The snapshot goes to `--serving-root` (default: a new temporary folder, where
nothing is published yet: no champion, no overlap check, as in a first backfill); the home's
own serving folder and its quality history are not touched.

    python bench/bench_publish.py --home /path/to/home-10M           # the saved model
    python bench/bench_publish.py --home ... --train --serving-root /tmp/after

Compare the snapshot with another (e.g. the backfill's own, under the home's serving/) by
the checksums in their manifest.json. Nothing is asserted; `--json` prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import resource
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

GB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Phase:
    name: str
    depth: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_start_gb: float = 0.0
    rss_end_gb: float = 0.0
    peak_gb: float = 0.0
    calls: int = 0


class Recorder:
    """Nested phases; a sampler thread raises every open phase's peak RSS."""

    def __init__(self) -> None:
        self.phases: list[Phase] = []
        self._open: list[Phase] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            rss = _rss() / GB
            with self._lock:
                for phase in self._open:
                    phase.peak_gb = max(phase.peak_gb, rss)

    @contextlib.contextmanager
    def phase(self, name: str):
        with self._lock:
            found = next((p for p in self.phases if p.name == name and p.depth == len(self._open)), None)
            phase = found or Phase(name, len(self._open))
            if found is None:
                self.phases.append(phase)
            rss = _rss() / GB
            if phase.calls == 0:
                phase.rss_start_gb = rss
            phase.peak_gb = max(phase.peak_gb, rss)
            self._open.append(phase)
        wall, cpu = time.perf_counter(), _cpu()
        try:
            yield
        finally:
            with self._lock:
                phase.wall_s += time.perf_counter() - wall
                phase.cpu_s += _cpu() - cpu
                phase.calls += 1
                phase.rss_end_gb = _rss() / GB
                phase.peak_gb = max(phase.peak_gb, phase.rss_end_gb)
                self._open.remove(phase)

    def wrap(self, module, attribute: str, name: str | None = None) -> None:
        """Time every call of `module.attribute` (as the callers look it up there)."""
        original = getattr(module, attribute)

        def timed(*args, **kwargs):
            with self.phase(name or attribute):
                return original(*args, **kwargs)

        setattr(module, attribute, timed)

    def close(self) -> None:
        self._stop.set()


def instrument(rec: Recorder, train: bool) -> None:
    """Time the pieces the step's functions call, where those functions look them up."""
    import assets.recommendations as step
    import quality.checks
    import recommendations.model_store
    import recommendations.tables
    import recommendations.user_lists
    import serving.gate
    import serving.publish
    import serving.snapshots

    rec.wrap(step, "load_shop_data")
    rec.wrap(step, "read_table", "user vectors (LanceDB)")
    rec.wrap(step, "build_inputs")
    rec.wrap(step, "model_for_run")
    rec.wrap(step, "recommendation_tables")
    rec.wrap(step, "_challenge", "champion/challenger")
    rec.wrap(step, "publish_tables")
    if train:  # a folder without models: model_for_run trains one, as a first night does
        models = Path(tempfile.mkdtemp(prefix="sg-models-"))
        step.model_root = lambda home: models
    rec.wrap(recommendations.model_store, "fit_ranker", "train ranker (fit_ranker)")
    rec.wrap(recommendations.tables, "title_neighbours", "title neighbours")
    rec.wrap(recommendations.tables, "ranked_user_table", "user table (ranked_user_table)")
    rec.wrap(recommendations.tables, "write_ranked_user_table", "user table to disk (blocks)")
    rec.wrap(step, "read_user_table", "user table read back (read_user_table)")
    rec.wrap(recommendations.tables, "similar_products", "similar products")
    rec.wrap(recommendations.tables, "popular_tables", "popular tables")
    rec.wrap(recommendations.user_lists.Generators, "fit", "generators fit")
    rec.wrap(recommendations.user_lists.FeatureContext, "build", "feature context")
    rec.wrap(recommendations.user_lists, "_user_block", "user blocks (wall summed over threads)")
    rec.wrap(recommendations.user_lists, "sorted_by", "concat + order check")
    rec.wrap(serving.publish, "evaluate_gate", "gate (evaluate_gate)")
    rec.wrap(serving.gate, "great_expectations", "gate: GX suites")
    rec.wrap(quality.checks, "validate_frame", "GX suite (per table)")
    rec.wrap(serving.publish, "write_snapshot", "snapshot write (write_snapshot)")
    rec.wrap(serving.snapshots, "_canonical", "canonical (cast + order)")
    rec.wrap(serving.snapshots, "table_checksum", "checksums")
    serving.gate.CHECKS = tuple(_timed_check(rec, check) for check in serving.gate.CHECKS)
    original_writer = serving.snapshots.parquet_writer

    def parquet_writer(df):
        write = original_writer(df)

        def timed(handle):
            with rec.phase("parquet files"):
                return write(handle)

        return timed

    serving.snapshots.parquet_writer = parquet_writer


def _timed_check(rec: Recorder, check):
    def timed(g):
        with rec.phase(f"gate: {check.__name__}"):
            return check(g)

    timed.__name__ = check.__name__
    return timed


def run_step(home: Path, serving: Path) -> dict:
    """assets/recommendations.py's build_and_publish on the home's last landing day."""
    from assets.recommendations import build_and_publish
    from assets.resources import EmbeddingEncoder, RecommenderSettings
    from core.memory import map_large_allocations
    from core.settings import Paths

    map_large_allocations()  # as the code location sets it for the nightly run's process
    paths = Paths(home)
    # The backfill's last partition: the newest landing day.
    last = max(date.fromisoformat(p.name) for p in paths.landing.iterdir() if DAY.match(p.name))
    log = logging.getLogger("bench_publish")
    step = build_and_publish(
        paths, RecommenderSettings(), EmbeddingEncoder().half_life_days, last, log, serving
    )
    return {
        "partition_date": last.isoformat(),
        "model": step.model_id,
        "snapshot": step.snapshot_id,
        "serving_root": str(serving),
        "gate_passed": step.gate.passed,
        "published": step.published,
        "row_counts": {name: df.height for name, df in step.tables.items()},
        "verdict": step.verdict.message,
    }


def print_report(report: dict) -> None:
    print(f"publish step on {report['home']} ({report['outcome']['row_counts']})")
    print(
        f"total {report['wall_s']:.1f} s wall, {report['cpu_s']:.1f} s CPU, "
        f"peak RSS {report['peak_gb']:.2f} GiB (VmHWM), load {report['load_start']} -> {report['load_end']}"
    )
    print(f"{'phase':<48}{'calls':>6}{'wall s':>10}{'CPU s':>10}{'RSS in':>9}{'peak':>8}{'out':>8}")
    for p in report["phases"]:
        name = "  " * p["depth"] + p["name"]
        print(
            f"{name:<48}{p['calls']:>6}{p['wall_s']:>10.1f}{p['cpu_s']:>10.1f}"
            f"{p['rss_start_gb']:>9.2f}{p['peak_gb']:>8.2f}{p['rss_end_gb']:>8.2f}"
        )
    print(json.dumps(report["outcome"], indent=2))


def _vm_hwm() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / GB
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a SHOPGUIDE_HOME a backfill left")
    parser.add_argument("--serving-root", type=Path, help="where the snapshot goes (default: a temp dir)")
    parser.add_argument("--train", action="store_true", help="train the ranker (a temp model folder)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    os.environ["SHOPGUIDE_HOME"] = str(home)
    serving = args.serving_root or Path(tempfile.mkdtemp(prefix="sg-serving-"))
    rec = Recorder()
    instrument(rec, args.train)
    load_start = [round(x, 2) for x in os.getloadavg()]
    wall, cpu = time.perf_counter(), _cpu()
    outcome = run_step(home, serving)
    rec.close()
    report = {
        "home": str(home),
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(_cpu() - cpu, 1),
        "peak_gb": round(_vm_hwm(), 2),
        "load_start": load_start,
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "outcome": outcome,
        "phases": [asdict(p) for p in rec.phases],
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

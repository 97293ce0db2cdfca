"""Benchmark of the intraday refresh: from a landing file arriving to the shoppers' lists
changing in a serving process, for a micro-batch of N active shoppers (issue 12: ≤ 60 s for
1,000 on this machine).

Set-up (not timed): in a temporary SHOPGUIDE_HOME, the shipped Online Retail lines are
imported as landing files and the nightly job runs over all 305 days (`run_range`, as
`shopguide demo` does), which publishes the snapshot the refresh overlays. With
`--workdir DIR --keep` the set-up home is kept, and a later run with the same workdir
reuses it (the overlay is dropped first, and the landing folder of the benchmark's day
emptied).

Measured: a `LiveReader` (what `shopguide serve` answers from) watches the serving folder.
A landing file is written for the day after the last one: N shoppers drawn (seed) among
those with a published list, each with a purchase of their first recommended product and
two views. Then `shopguide refresh` runs as a child process, as the intraday job does
(process start, imports, ingest, the shoppers' vectors and lists, the gate, the overlay),
and the clock stops when the LiveReader serves the new lists. The sensor's own interval
(`intraday_sensor` looks every 30 s) comes on top of the figure and is not in it.

    python bench/bench_intraday.py                         # 1,000 shoppers, real model
    python bench/bench_intraday.py --shoppers 1000 --workdir /tmp/sg-intraday-bench --keep
    python bench/bench_intraday.py --fake-encoder          # hashing:32 vectors (faster set-up)

Prints the figure with CPU seconds (user + sys of the child) and the load average, and
writes bench/out/intraday.json; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `python bench/...` puts bench/, not the root, on the path

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "out" / "intraday.json"


def set_up(home_dir: Path) -> dict:
    """Import Online Retail and run the nightly job over it, unless `home_dir` holds a
    published snapshot already (then only the previous benchmark's traces are removed)."""
    from core.settings import Paths
    from serving import serving_root
    from serving.publish import drop_overlay, read_pointer
    from shopguide.runner import run_range
    from shopguide.sources.online_retail import import_online_retail
    from warehouse.landing import landing_days

    paths = Paths(home_dir).ensure()
    paths.export()
    root = serving_root(paths)
    pointer = read_pointer(root)
    if pointer["current"] is not None:
        if pointer.get("overlay"):
            drop_overlay(root, reason="bench_intraday: a fresh start")
        return {"set_up_seconds": 0.0, "reused": True}
    started = time.perf_counter()
    import_online_retail(paths.landing)
    days = landing_days(paths.landing)
    outcome = run_range(paths, days[0], days[-1])
    if not outcome.success:
        raise SystemExit(f"the nightly run failed ({outcome.run_id}); no snapshot to overlay")
    return {"set_up_seconds": round(time.perf_counter() - started, 1), "reused": False}


def micro_batch(home_dir: Path, shoppers: int, seed: int) -> tuple[Path, list[str]]:
    """Write the landing file: `shoppers` shoppers with a list, a purchase and two views each."""
    import orjson
    import polars as pl

    from core.settings import Paths
    from serving import serving_root
    from serving.publish import read_pointer
    from serving.snapshots import read_manifest, read_table
    from warehouse.landing import write_jsonl

    paths = Paths(home_dir)
    root = serving_root(paths)
    current = read_pointer(root)["current"]
    day = date.fromisoformat(read_manifest(root, current).partition_date) + timedelta(days=1)
    lists = read_table(root, current, "user_recommendations").filter(pl.col("rank") <= 3)
    users = sorted(lists["user_id"].unique().to_list())
    chosen = sorted(random.Random(seed).sample(users, min(shoppers, len(users))))
    ranked = lists.group_by("user_id").agg(pl.col("product_id").sort_by("rank"))
    picks = dict(ranked.iter_rows())
    folder = paths.landing / day.isoformat()
    if folder.is_dir():  # a kept home: the previous run's file would be "seen" already
        shutil.rmtree(folder)
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=10)
    records = []
    for n, user in enumerate(chosen):
        at = start + timedelta(seconds=n)
        first, *others = picks[user]
        for i, (kind, product) in enumerate([("view", others[0] if others else first), ("view", first)]):
            records.append(_event(f"bench-{n}-{i}", kind, user, product, at))
        records.append(_event(f"bench-{n}-buy", "purchase", user, first, at + timedelta(seconds=30)))
    path = folder / "intraday-bench.jsonl"
    write_jsonl(path, [orjson.dumps(r) for r in records])
    return path, chosen


def _event(event_id: str, kind: str, user: str, product: str, at: datetime) -> dict:
    record = {
        "event_id": event_id,
        "event_type": kind,
        "occurred_at": at.isoformat() + "Z",
        "user_id": user,
        "session_id": f"bench-{user}",
        "product_id": product,
        "properties": {"country": "United Kingdom"},
    }
    if kind == "purchase":
        record.update(quantity=1, price=2.95)
    return record


def measure(home_dir: Path, shoppers: int, seed: int) -> dict:
    from core.settings import Paths
    from serving import serving_root
    from serving.live import LiveReader

    root = serving_root(Paths(home_dir))
    live = LiveReader(root, poll_s=0.1)  # what `shopguide serve` answers from
    try:
        path, chosen = micro_batch(home_dir, shoppers, seed)
        before = {u: [r["product_id"] for r in live.get_recommendations(u, 10)] for u in chosen}
        load_before = os.getloadavg()
        landed = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = subprocess.run(
            [sys.executable, "-m", "shopguide.cli", "refresh", "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            check=False,
        )
        refreshed = time.perf_counter()
        after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode != 0:
            raise SystemExit(f"shopguide refresh failed:\n{child.stdout}\n{child.stderr}")
        report = json.loads(child.stdout)
        while live.state.overlay is None or live.state.overlay.overlay_id != report["overlay_id"]:
            if time.perf_counter() - refreshed > 30:
                raise SystemExit(f"the serving process did not pick up {report['overlay_id']} within 30 s")
            time.sleep(0.01)
        served = time.perf_counter()
        after = {u: [r["product_id"] for r in live.get_recommendations(u, 10)] for u in chosen}
    finally:
        live.close()
    return {
        "landing_file": str(path.relative_to(Paths(home_dir).landing)),
        "shoppers": len(chosen),
        "events": 3 * len(chosen),
        "landing_to_served_seconds": round(served - landed, 2),
        "refresh_process_seconds": round(refreshed - landed, 2),
        "serving_pickup_seconds": round(served - refreshed, 2),
        "refresh_cpu_seconds": round(
            (after_usage.ru_utime - usage.ru_utime) + (after_usage.ru_stime - usage.ru_stime), 2
        ),
        "refresh_steps_seconds": report["seconds"],
        "refreshed_shoppers": report["refreshed"],
        "lists_changed": sum(before[u] != after[u] for u in chosen),
        "gate_passed": (report["gate"] or {}).get("passed"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep (and later reuse) the set-up home")
    parser.add_argument("--fake-encoder", action="store_true", help="hashing:32 vectors instead of MiniLM")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sg-intraday-"))
    home = workdir / "home"
    os.environ.update(SHOPGUIDE_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), DO_NOT_TRACK="1")
    if args.fake_encoder:
        os.environ.update(SHOPGUIDE_EMBEDDING_MODEL="hashing:32", SHOPGUIDE_SEARCH_MODEL="hashing:32")
    try:
        result = {**set_up(home), **measure(home, args.shoppers, args.seed)}
        result["encoder"] = os.environ.get("SHOPGUIDE_EMBEDDING_MODEL", "default (all-MiniLM-L6-v2)")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    steps = ", ".join(f"{k} {v}" for k, v in result["refresh_steps_seconds"].items())
    print(
        f"landing file → changed lists served: {result['landing_to_served_seconds']} s for "
        f"{result['shoppers']:,} shoppers ({result['events']:,} events; {result['lists_changed']:,} lists "
        f"changed)\n  `shopguide refresh` process {result['refresh_process_seconds']} s "
        f"(CPU {result['refresh_cpu_seconds']} s user+sys), "
        f"serving pick-up {result['serving_pickup_seconds']} s\n"
        f"  refresh steps: {steps}\n"
        f"  load average before {result['load_average_before']}, after {result['load_average_after']} "
        f"on {result['cpus']} CPUs; encoder {result['encoder']}"
    )


if __name__ == "__main__":
    main()

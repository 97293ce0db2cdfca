"""The learned ranker's training and scoring: time, shoppers/s and peak memory.

    python bench/bench_ranker.py --online-retail            # the demo's data (run `shopguide demo` first)
    python bench/bench_ranker.py --users 1000000 --products 100000 --score-users 20000

Online Retail: trains on the log before its last 30 days (as `shopguide evaluate` does for
its test window) and scores every shopper. Synthetic: a shop built in memory (no pipeline):
shoppers with Zipf-popular products, personal favourites they re-order, 90 days; trains
with the default settings and scores `--score-users` shoppers (all when 0), reporting the
throughput and what scoring all of them would take at that rate. Prints one JSON line per
phase and a summary; nothing is asserted about timing.

Scoring is timed in its phases: fitting the generators (ALS, EASE, popular lists, content
neighbours), building the feature context, then ranking (candidates, features, LightGBM).
`--train-users N` caps the labelled shoppers per cut-off (RankerSettings.max_training_users)
for a scoring-only measurement: at 1M × 100k the default 20,000 costs minutes of training
that says nothing about scoring (a smaller model scores the same candidates and features).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.candidates import Generators  # noqa: E402
from recommendations.config import RecommendationConfig  # noqa: E402
from recommendations.features import FeatureContext  # noqa: E402
from recommendations.personal import rank_users  # noqa: E402
from recommendations.ranker import RankerSettings, fit_ranker  # noqa: E402
from recommendations.shop import ShopData, inputs_as_of  # noqa: E402
from shopguide.sources.memory_shop import START, repeat_buyer_shop  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def reset_phase_peak() -> None:
    """Restart the kernel's RSS high-water mark (Linux), so `phase_peak_rss_gb` measures from here."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def phase_peak_rss_gb() -> float | None:
    try:
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) / 1024**2


def online_retail() -> tuple[ShopData, datetime]:
    from core.settings import Paths
    from evaluation.data import load_shop_data

    data = load_shop_data(Paths.from_env())
    last = data.events["occurred_at"].max()
    return data, datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1) - timedelta(days=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--online-retail", action="store_true", help="the demo's data under SHOPGUIDE_HOME")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--baskets", type=float, default=4.0, help="mean baskets per shopper")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--score-users", type=int, default=20_000, help="0: every shopper")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="LightGBM and torch (RankerSettings.threads)")
    parser.add_argument(
        "--train-users", type=int, default=None, help="labelled shoppers per cut-off (default: the setting's)"
    )
    parser.add_argument("--output", type=Path, default=Path("bench/out/ranker.json"))
    args = parser.parse_args()

    figures: dict = {}
    started = time.perf_counter()
    if args.online_retail:
        data, as_of = online_retail()
        figures["shop"] = "online_retail"
    else:
        data = repeat_buyer_shop(args.users, args.products, args.days, args.baskets, args.dim, seed=0)
        as_of = START + timedelta(days=args.days)
        figures["shop"] = f"synthetic {args.users:,} shoppers × {args.products:,} products"
    figures.update(
        events=data.events.height,
        shoppers=data.users.height,
        products=data.products.height,
        build_s=round(time.perf_counter() - started, 1),
        build_peak_rss_gb=round(peak_rss_gb(), 2),
    )
    print(json.dumps({"phase": "shop", **figures}), flush=True)

    config, settings = RecommendationConfig(), RankerSettings(threads=args.threads)
    if args.train_users is not None:
        settings = replace(settings, max_training_users=args.train_users)
    started = time.perf_counter()
    model = fit_ranker(data, as_of, config, settings)
    figures["train_s"] = round(time.perf_counter() - started, 1)
    figures["train_peak_rss_gb"] = round(peak_rss_gb(), 2)
    figures["training"] = model.info
    print(json.dumps({"phase": "train", "seconds": figures["train_s"], "info": model.info}), flush=True)

    started = time.perf_counter()
    inputs = inputs_as_of(data, as_of, config)
    figures["inputs_s"] = round(time.perf_counter() - started, 1)
    returning = np.flatnonzero(np.diff(inputs.history.indptr) > 0)
    rows = returning if args.score_users == 0 else returning[: args.score_users]
    reset_phase_peak()  # the fits and scoring, with the inputs already in memory
    started = time.perf_counter()
    generators = Generators.fit(inputs, settings.limits, settings.threads)
    figures["generators_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    context = FeatureContext.build(inputs)
    figures["context_s"] = round(time.perf_counter() - started, 1)
    print(
        json.dumps({"phase": "fit", **{k: figures[k] for k in ("inputs_s", "generators_s", "context_s")}}),
        flush=True,
    )
    started = time.perf_counter()
    ranked = rank_users(model, inputs, rows, args.k, "repurchase", generators=generators, context=context)
    seconds = time.perf_counter() - started
    rate = len(rows) / seconds
    fixed = figures["inputs_s"] + figures["generators_s"] + figures["context_s"]
    figures.update(
        scored_shoppers=int(len(rows)),
        score_s=round(seconds, 1),
        shoppers_per_s=round(rate, 1),
        all_returning_shoppers=int(len(returning)),
        all_shoppers_estimate_s=round(len(returning) / rate, 1),
        # The nightly's cost for every returning shopper: inputs, fits, then ranking at this rate.
        all_with_fits_estimate_s=round(fixed + len(returning) / rate, 1),
        full_lists=float((ranked.products[:, -1] >= 0).mean()),
        peak_rss_gb=round(peak_rss_gb(), 2),
        score_peak_rss_gb=round(phase_peak_rss_gb() or float("nan"), 2),
    )
    print(
        json.dumps(
            {"phase": "score", **{k: figures[k] for k in ("scored_shoppers", "score_s", "shoppers_per_s")}}
        )
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, default=str))
    print(
        f"\n{figures['shop']}: {figures['events']:,} events\n"
        f"  train   {figures['train_s']:>8} s   peak RSS {figures['train_peak_rss_gb']} GB\n"
        f"  inputs  {figures['inputs_s']:>8} s\n"
        f"  fit     {figures['generators_s']:>8} s generators, {figures['context_s']} s features\n"
        f"  score   {figures['score_s']:>8} s   {figures['shoppers_per_s']:,} shoppers/s "
        f"({figures['scored_shoppers']:,} shoppers; all {figures['all_returning_shoppers']:,} ≈ "
        f"{figures['all_shoppers_estimate_s']:,} s, with inputs and fits "
        f"{figures['all_with_fits_estimate_s']:,} s)\n"
        f"  peak RSS {figures['peak_rss_gb']} GB (fits and scoring: {figures['score_peak_rss_gb']} GB)"
    )


if __name__ == "__main__":
    main()

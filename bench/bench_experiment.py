"""The readout's statistics over many simulated experiments (docs/experiments.md quotes it).

    python bench/bench_experiment.py [--seeds 400] [--shoppers 4000]
    python bench/bench_experiment.py --peeking [--seeds 1000] [--shoppers 4000] [--alpha 0.05]

For each seed: a planted lift (CTR +10 %, conversion and revenue +15 %) → does the 95 %
interval cover it; an A/A experiment → does any metric reject at 5 %; a broken split (47 %
routed where 50 % is configured) and a healthy 10 % canary → does the SRM check fire. Also a
naive CTR interval that treats exposures as independent (the binomial standard error), to
show what ignoring the shopper as randomisation unit costs.

`--peeking`: the whole decision rule (default settings) applied to the readout as it stands at
the end of each day of a 28-day experiment, as the daily asset (and its automation) does, against
the rule checked only on some days. In an A/A experiment every promotion is a false one; with a
planted lift, the share promoted is the power. Repeated looks at accumulating data inflate the
false-promotion rate above the single look's alpha / 2 (docs/experiments.md, "Peeking").
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from experiments.readout import ABORT, KEEP, METRICS, PROMOTE, DecisionRule, compute_readout, metric_readout
from shopguide.sources.experiment import ExperimentSimulation, simulate_daily_shoppers, simulate_shoppers


def naive_ctr_covers(frame, lift: float) -> bool:
    arms = {}
    for arm in ("control", "canary"):
        rows = frame.filter(frame["arm"] == arm)
        clicks, shown = rows["clicks"].sum(), rows["exposures"].sum()
        rate = clicks / shown
        arms[arm] = (rate, rate * (1 - rate) / shown)
    (rt, vt), (rc, vc) = arms["canary"], arms["control"]
    se = math.sqrt(vt / rt**2 + vc / rc**2)
    low, high = rt / rc * math.exp(-1.96 * se) - 1, rt / rc * math.exp(1.96 * se) - 1
    return low <= lift <= high


def wilson(hits: int, n: int) -> str:
    p, z = hits / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{p:6.1%}  (95% CI {centre - half:.1%} to {centre + half:.1%})"


# When the rule is checked: every day (the daily asset), once a week, only at the end.
SCHEDULES = {"daily": range(1, 29), "weekly": (7, 14, 21, 28), "end only": (28,)}


def first_verdicts(sim: ExperimentSimulation, rule: DecisionRule) -> dict[str, tuple[str, int]]:
    """Per schedule: (the first decision other than keep collecting on its days, its day): the
    one that would have acted. At day 28 = max_days the rule always decides."""
    decisions = [
        compute_readout(frame, sim.canary_share, day, rule).decision
        for day, frame in enumerate(simulate_daily_shoppers(sim), start=1)
    ]
    return {
        name: next(((decisions[d - 1], d) for d in days if decisions[d - 1] != KEEP), (KEEP, days[-1]))
        for name, days in SCHEDULES.items()
    }


def peeking(seeds: int, shoppers: int, alpha: float) -> None:
    rule = DecisionRule(alpha=alpha)
    started = time.perf_counter()
    cases = {"A/A (no lift)": 0.0, "conversion +15%": 0.15}
    promoted = {case: dict.fromkeys(SCHEDULES, 0) for case in cases}
    aborted_early = {case: dict.fromkeys(SCHEDULES, 0) for case in cases}  # before max_days
    for seed in range(seeds):
        for case, lift in cases.items():
            sim = ExperimentSimulation(
                shoppers=shoppers,
                days=rule.max_days,
                conversion_lift=lift,
                base_conversion=0.08,
                seed=40_000 + seed if lift else 50_000 + seed,
            )
            for name, (decision, day) in first_verdicts(sim, rule).items():
                promoted[case][name] += decision == PROMOTE
                aborted_early[case][name] += decision == ABORT and day < rule.max_days
    print(
        f"peeking: {seeds} seeds, {shoppers:,} shoppers over {rule.max_days} days (50/50), rule "
        f"(alpha {rule.alpha}, primary {rule.primary}, min {rule.min_days} days, "
        f"{rule.min_shoppers_per_arm} shoppers an arm), "
        f"{time.perf_counter() - started:.1f} s"
    )
    for case, counts in promoted.items():
        print(f"  {case}: share promoted / aborted before day {rule.max_days}, when the rule is checked")
        for name, hits in counts.items():
            print(f"    {name:<9} {wilson(hits, seeds)}  /  {wilson(aborted_early[case][name], seeds)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--shoppers", type=int, default=4_000)
    parser.add_argument("--peeking", action="store_true", help="only the repeated-looks check")
    parser.add_argument("--alpha", type=float, default=0.05, help="the rule's alpha (--peeking)")
    args = parser.parse_args()
    if args.peeking:
        peeking(args.seeds, args.shoppers, args.alpha)
        return
    started = time.perf_counter()
    planted = {"ctr": 0.10, "add_to_cart_rate": None, "conversion_rate": 0.15, "revenue_per_shopper": 0.15}
    covered = {m: 0 for m, lift in planted.items() if lift is not None}
    naive = 0
    aa = {m: 0 for m in METRICS}
    srm_broken = srm_healthy = 0
    for seed in range(args.seeds):
        sim = ExperimentSimulation(
            shoppers=args.shoppers, seed=seed, ctr_lift=0.10, conversion_lift=0.15, base_conversion=0.08
        )
        frame = simulate_shoppers(sim)
        for metric in covered:
            m = metric_readout(frame, metric)
            covered[metric] += m.lift.low <= planted[metric] <= m.lift.high
        naive += naive_ctr_covers(frame, 0.10)
        null = simulate_shoppers(
            ExperimentSimulation(shoppers=args.shoppers, seed=10_000 + seed, base_conversion=0.08)
        )
        for metric in METRICS:
            aa[metric] += metric_readout(null, metric).lift.p_value < 0.05
        broken = ExperimentSimulation(shoppers=10_000, assigned_share=0.47, seed=20_000 + seed)
        srm_broken += compute_readout(simulate_shoppers(broken), 0.5, 7).srm.mismatch
        healthy = ExperimentSimulation(shoppers=10_000, canary_share=0.1, seed=30_000 + seed)
        srm_healthy += compute_readout(simulate_shoppers(healthy), 0.1, 7).srm.mismatch
    n = args.seeds
    print(
        f"{n} seeds, {args.shoppers:,} shoppers per experiment (50/50), {time.perf_counter() - started:.1f} s"
    )
    print("coverage of the planted lift by the 95% interval (delta method, log scale, shopper level):")
    for metric, hits in covered.items():
        print(f"  {metric:<20} lift {planted[metric]:+.0%}: {wilson(hits, n)}")
    print(f"  ctr, naive per-exposure binomial interval: {wilson(naive, n)}")
    print("A/A: share of experiments with p < 0.05:")
    for metric, hits in aa.items():
        print(f"  {metric:<20} {wilson(hits, n)}")
    print(
        f"SRM (p < 0.001), 47% routed for a configured 50%, 10,000 shoppers: caught {wilson(srm_broken, n)}"
    )
    print(f"SRM false alarms, healthy 10% canary, 10,000 shoppers: {wilson(srm_healthy, n)}")
    # Expected false-alarm rate is the threshold itself.
    print(f"  (expected {0.001:.1%}; binomial P(0 alarms) = {stats.binom.pmf(0, n, 0.001):.2f})")
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()

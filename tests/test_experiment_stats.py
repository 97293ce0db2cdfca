"""The readout's statistics: known answers, then their behaviour on simulated experiments
(coverage of a planted lift, the A/A false-positive rate, a broken split caught).

The simulated checks use fixed seeds, so they are deterministic; their bounds are the ones a
correct 95 % interval passes with probability > 99.9 % (binomial tails), not tuned to the seeds.
bench/bench_experiment.py runs the same checks over 400 seeds.
"""

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from experiments.readout import (
    ABORT,
    KEEP,
    PROMOTE,
    SHOPPER_SCHEMA,
    DecisionRule,
    compute_readout,
    decide,
    metric_readout,
)
from experiments.stats import (
    RatioEstimate,
    minimum_detectable_effect,
    ratio_estimate,
    relative_lift,
    sample_ratio_check,
)
from shopguide.sources.experiment import ExperimentSimulation, simulate_daily_shoppers, simulate_shoppers
from tests.crafted_readouts import BROKEN, MANY, OK_SPLIT, intervals

# --- known answers ---------------------------------------------------------------------------


def test_ratio_of_means_and_its_delta_variance_by_hand():
    y, x = np.array([1.0, 0.0, 2.0, 1.0]), np.array([2.0, 1.0, 4.0, 1.0])
    r = ratio_estimate(y, x)
    assert r.value == pytest.approx(4 / 8)
    # Var(R) = (var y − 2R cov + R² var x) / (n x̄²), sample (co)variances with n − 1
    vy, vx, cxy = np.var(y, ddof=1), np.var(x, ddof=1), np.cov(x, y)[0, 1]
    assert r.variance == pytest.approx((vy - 2 * 0.5 * cxy + 0.25 * vx) / (4 * 4))
    plain = ratio_estimate(np.array([1, 0, 0, 1]))
    assert plain.value == 0.5 and plain.variance == pytest.approx((1 / 3) / 4)


def test_relative_lift_interval_on_the_log_scale():
    canary, control = RatioEstimate(0.12, 0.0001, 1000), RatioEstimate(0.10, 0.0001, 1000)
    lift = relative_lift(canary, control)
    se = math.sqrt(0.0001 / 0.12**2 + 0.0001 / 0.10**2)
    assert lift.estimate == pytest.approx(0.2)
    assert lift.low == pytest.approx(1.2 * math.exp(-1.959964 * se) - 1, rel=1e-5)
    assert lift.high == pytest.approx(1.2 * math.exp(1.959964 * se) - 1, rel=1e-5)
    assert lift.p_value == pytest.approx(2 * stats.norm.sf(math.log(1.2) / se))
    assert lift.se_log == pytest.approx(se)


def test_lift_is_undefined_without_a_control_rate():
    assert relative_lift(RatioEstimate(0.1, 0.01, 9), RatioEstimate(0.0, 0.0, 9)).estimate is None
    assert relative_lift(RatioEstimate(0.1, 0.01, 9), ratio_estimate(np.array([]))).low is None


def test_minimum_detectable_effect_shrinks_with_the_square_root_of_the_sample():
    assert minimum_detectable_effect(0.05) == pytest.approx(math.exp(2.801585 * 0.05) - 1, rel=1e-5)
    assert minimum_detectable_effect(None) is None
    # se ∝ 1/√n: four times the shoppers, half the log-scale MDE
    assert math.log1p(minimum_detectable_effect(0.025)) == pytest.approx(
        math.log1p(minimum_detectable_effect(0.05)) / 2
    )


def test_sample_ratio_check_against_scipy():
    check = sample_ratio_check(5_000, 5_300, 0.5)
    chi2, p = stats.chisquare([5_000, 5_300])
    assert check.chi_square == pytest.approx(chi2) and check.p_value == pytest.approx(p)
    # p ≈ 0.003: suspicious, but above the default threshold of 0.001; below a looser one.
    assert not check.mismatch
    assert sample_ratio_check(5_000, 5_300, 0.5, threshold=0.01).mismatch


def test_sample_ratio_uses_the_configured_share():
    assert not sample_ratio_check(9_000, 1_000, 0.1).mismatch
    assert sample_ratio_check(9_000, 1_000, 0.5).mismatch
    assert sample_ratio_check(0, 0, 0.1).p_value is None


# --- the decision rule on crafted readouts ---------------------------------------------------


@pytest.mark.parametrize(
    "metrics, srm, shoppers, days, action, words",
    [
        (intervals(primary=(0.01, 0.05)), BROKEN, MANY, 10, ABORT, "sample ratio mismatch"),
        (intervals(primary=(-0.08, -0.02)), OK_SPLIT, MANY, 2, ABORT, "significantly worse"),
        (intervals(primary=(0.01, 0.05)), OK_SPLIT, MANY, 7, PROMOTE, "significantly better"),
        (intervals(primary=(0.01, 0.05)), OK_SPLIT, MANY, 3, KEEP, "before the minimum 7 days"),
        (
            intervals(primary=(0.01, 0.05)),
            OK_SPLIT,
            {"control": 100, "canary": 90},
            9,
            KEEP,
            "fewer than 500",
        ),
        (intervals(primary=(0.01, 0.05), revenue=(-0.2, -0.01)), OK_SPLIT, MANY, 9, KEEP, "guardrail"),
        (intervals(primary=(0.01, 0.05), ctr=(-0.2, -0.01)), OK_SPLIT, MANY, 28, ABORT, "guardrail worse"),
        (intervals(), OK_SPLIT, MANY, 12, KEEP, "not significant; detectable lift"),
        (intervals(), OK_SPLIT, MANY, 28, ABORT, "maximum duration"),
    ],
)
def test_decision_rule(metrics, srm, shoppers, days, action, words):
    decision, reason = decide(metrics, srm, shoppers, days, DecisionRule())
    assert decision == action and words in reason


def test_decision_rule_is_configurable_and_checked():
    metrics = intervals(primary=(-0.01, 0.02), ctr=(0.01, 0.03))
    assert decide(metrics, OK_SPLIT, MANY, 7, DecisionRule(primary="ctr", guardrails=[]))[0] == PROMOTE
    assert decide(metrics, OK_SPLIT, MANY, 3, DecisionRule(primary="ctr", min_days=3))[0] == PROMOTE
    with pytest.raises(ValueError, match="unknown metric"):
        DecisionRule(primary="clicks")
    with pytest.raises(ValueError, match="min_days <= max_days"):
        DecisionRule(min_days=30, max_days=28)
    with pytest.raises(ValueError, match="alpha"):
        DecisionRule(alpha=1.5)


def test_readout_of_an_empty_arm_keeps_collecting():
    frame = simulate_shoppers(ExperimentSimulation(shoppers=200, seed=3)).filter(pl.col("arm") == "control")
    readout = compute_readout(frame, 0.5, days_running=1)
    assert readout.shoppers["canary"] == 0 and readout.metrics["ctr"].lift.estimate is None
    assert readout.decision == ABORT  # every shopper in one arm of a 50 % split: a broken split
    assert "sample ratio mismatch" in readout.reason
    assert compute_readout(frame.head(0).cast(SHOPPER_SCHEMA), 0.5, 1).decision == KEEP


# --- on simulated experiments ----------------------------------------------------------------

SEEDS = range(100)


def _covered(metric: str, lift: float, **sim) -> int:
    hits = 0
    for seed in SEEDS:
        frame = simulate_shoppers(ExperimentSimulation(shoppers=3_000, seed=seed, **sim))
        m = metric_readout(frame, metric)
        hits += m.lift.low <= lift <= m.lift.high
    return hits


# P(X <= 88 | n = 100, p = 0.95) ≈ 0.0057 and P(X >= 100) ≈ 0.006: a correct interval lands
# between; a naive per-exposure interval for CTR (ignoring the shopper clustering) falls below.
@pytest.mark.parametrize(
    "metric, sim, lift",
    [
        ("ctr", {"ctr_lift": 0.10}, 0.10),
        ("conversion_rate", {"conversion_lift": 0.15, "base_conversion": 0.08}, 0.15),
        ("revenue_per_shopper", {"conversion_lift": 0.15, "base_conversion": 0.08}, 0.15),
    ],
)
def test_interval_covers_the_planted_lift_about_95_percent(metric, sim, lift):
    assert 89 <= _covered(metric, lift, **sim) <= 99


def test_a_a_test_rejects_about_5_percent():
    rejections = 0
    for seed in range(200):
        frame = simulate_shoppers(ExperimentSimulation(shoppers=2_000, seed=1_000 + seed))
        rejections += metric_readout(frame, "ctr").lift.p_value < 0.05
    # P(X <= 2 | 200, 0.05) ≈ 0.0023, P(X >= 20) ≈ 0.0016
    assert 3 <= rejections <= 19


def test_sample_ratio_mismatch_caught_when_the_split_is_broken():
    broken = sum(
        compute_readout(
            simulate_shoppers(
                ExperimentSimulation(shoppers=10_000, canary_share=0.5, assigned_share=0.47, seed=s)
            ),
            0.5,
            days_running=7,
        ).srm.mismatch
        for s in range(20)
    )
    healthy = sum(
        compute_readout(
            simulate_shoppers(ExperimentSimulation(shoppers=10_000, canary_share=0.1, seed=s)),
            0.1,
            days_running=7,
        ).srm.mismatch
        for s in range(20)
    )
    # 47 % instead of 50 % over 10,000 shoppers: z ≈ 6, p ≈ 1e-9 in expectation
    assert broken == 20 and healthy == 0


def test_planted_lift_is_promoted_and_a_null_is_not():
    rule = DecisionRule(min_shoppers_per_arm=1_000)
    strong = simulate_shoppers(
        ExperimentSimulation(shoppers=40_000, conversion_lift=0.3, ctr_lift=0.1, seed=5)
    )
    assert compute_readout(strong, 0.5, days_running=7, rule=rule).decision == PROMOTE
    null = simulate_shoppers(ExperimentSimulation(shoppers=40_000, seed=6))
    assert compute_readout(null, 0.5, days_running=7, rule=rule).decision == KEEP


def test_novelty_inflates_early_click_through_lift():
    early = ExperimentSimulation(shoppers=40_000, ctr_lift=0.05, novelty=1.0, days=2, seed=8)
    late = ExperimentSimulation(shoppers=40_000, ctr_lift=0.05, novelty=1.0, days=30, seed=8)
    assert metric_readout(simulate_shoppers(early), "ctr").lift.estimate > 0.3
    assert metric_readout(simulate_shoppers(late), "ctr").lift.estimate < 0.2


def test_daily_frames_accumulate_to_the_whole_experiment():
    sim = ExperimentSimulation(shoppers=2_000, days=10, seed=4)
    frames = simulate_daily_shoppers(sim)
    assert len(frames) == 10 and frames[-1].equals(simulate_shoppers(sim))
    heights = [f.height for f in frames]
    assert heights == sorted(heights) and 0 < heights[0] < heights[-1] == 2_000
    # A shopper's counts only grow from one day to the next, responses included.
    for before, after in zip(frames, frames[1:], strict=False):
        joined = before.join(after, on=["user_id", "arm"], suffix="_after")
        assert joined.height == before.height
        for column in ("exposures", "clicks", "converted", "revenue"):
            assert (joined[column] <= joined[f"{column}_after"]).all()
    assert frames[0]["converted"].sum() < frames[-1]["converted"].sum()

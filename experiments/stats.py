"""The statistics of an online experiment, as plain functions over per-shopper arrays.

The randomisation unit is the shopper (the canary routes by a hash of the user id), so every
figure is computed from one row per shopper: a metric is a ratio of two per-shopper sums,
mean(y) / mean(x), where x is 1 for a per-shopper metric (conversion, revenue per shopper) and
the shopper's exposures for click-through rate. Treating exposures as independent would
understate the variance: one shopper's exposures are correlated.

Interval: the delta method on the log of the ratio of the two arms' ratios (docs/experiments.md
says why this and not the bootstrap: closed form, milliseconds for a million shoppers, and the
same standard error gives the minimum detectable effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _scipy_stats():
    """scipy.stats, imported when first used: its import took ~1 s, which every process
    that loads the Dagster definitions paid (assets.resources reads this package's config
    types), while only a running experiment's readout computes anything with it."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class RatioEstimate:
    value: float  # mean(y) / mean(x)
    variance: float  # delta-method variance of `value`
    shoppers: int


@dataclass(frozen=True)
class Lift:
    """canary / control − 1, with its (1 − alpha) interval and two-sided p-value; all None
    when it is undefined (an arm without shoppers, a control rate of zero)."""

    estimate: float | None
    low: float | None
    high: float | None
    p_value: float | None
    se_log: float | None  # standard error of log(canary / control)

    @property
    def significant_better(self) -> bool:
        return self.low is not None and self.low > 0

    @property
    def significant_worse(self) -> bool:
        return self.high is not None and self.high < 0


UNDEFINED = Lift(None, None, None, None, None)


def ratio_estimate(y: np.ndarray, x: np.ndarray | None = None) -> RatioEstimate:
    """mean(y) / mean(x) over shoppers, and its delta-method variance:
    Var(R) ≈ (var(y) − 2R·cov(x, y) + R²·var(x)) / (n · mean(x)²)."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n == 0:
        return RatioEstimate(math.nan, math.nan, 0)
    if x is None:
        mean = float(y.mean())
        variance = float(y.var(ddof=1)) / n if n > 1 else math.nan
        return RatioEstimate(mean, variance, n)
    x = np.asarray(x, dtype=np.float64)
    mx = float(x.mean())
    if mx == 0:
        return RatioEstimate(math.nan, math.nan, n)
    r = float(y.mean()) / mx
    if n < 2:
        return RatioEstimate(r, math.nan, n)
    cov = np.cov(x, y, ddof=1)
    variance = (cov[1, 1] - 2 * r * cov[0, 1] + r * r * cov[0, 0]) / (n * mx * mx)
    return RatioEstimate(r, float(max(variance, 0.0)), n)


def relative_lift(canary: RatioEstimate, control: RatioEstimate, alpha: float = 0.05) -> Lift:
    """Relative lift canary / control − 1 with a (1 − alpha) interval from the delta method on
    the log scale: se² = Var(R_t)/R_t² + Var(R_c)/R_c². The log scale keeps the interval
    inside (−100 %, ∞) and makes it asymmetric like the ratio itself."""
    rt, rc = canary.value, control.value
    if not all(math.isfinite(v) for v in (rt, rc, canary.variance, control.variance)) or rt <= 0 or rc <= 0:
        return UNDEFINED
    se = math.sqrt(canary.variance / rt**2 + control.variance / rc**2)
    log_lift = math.log(rt / rc)
    if se == 0:
        return Lift(rt / rc - 1, rt / rc - 1, rt / rc - 1, 1.0 if log_lift == 0 else 0.0, 0.0)
    stats = _scipy_stats()
    z = stats.norm.ppf(1 - alpha / 2)
    p = 2 * stats.norm.sf(abs(log_lift) / se)
    return Lift(
        math.exp(log_lift) - 1, math.exp(log_lift - z * se) - 1, math.exp(log_lift + z * se) - 1, float(p), se
    )


def minimum_detectable_effect(se_log: float | None, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest relative lift this sample detects with `power` at level `alpha` (two-sided),
    from the current standard error of the log lift: exp((z_{1−α/2} + z_{power}) · se) − 1.
    It shrinks as 1/√n: four times the shoppers halve it."""
    if se_log is None or not math.isfinite(se_log):
        return None
    norm = _scipy_stats().norm
    return math.exp((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se_log) - 1


@dataclass(frozen=True)
class SampleRatio:
    control: int
    canary: int
    expected_canary_share: float
    chi_square: float | None
    p_value: float | None
    mismatch: bool


def sample_ratio_check(
    control: int, canary: int, canary_share: float, threshold: float = 0.001
) -> SampleRatio:
    """Chi-square goodness of fit (1 degree of freedom) of the shoppers per arm against the
    configured canary share. A mismatch (p < threshold, 0.001 by convention: the check runs
    every day, and a real SRM gives p-values far below it) means the split itself is broken
    (routing, logging, a bot in one arm), so no lift figure can be trusted."""
    total = control + canary
    if total == 0 or not 0 < canary_share < 1:
        return SampleRatio(control, canary, canary_share, None, None, False)
    expected = np.array([total * (1 - canary_share), total * canary_share])
    chi2, p = _scipy_stats().chisquare([control, canary], expected)
    return SampleRatio(control, canary, canary_share, float(chi2), float(p), bool(p < threshold))

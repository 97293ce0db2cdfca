"""An experiment's readout: per-arm figures, lifts with intervals, the sample-ratio check, the
minimum detectable effect and the decision, from one row per exposed shopper.

Pure functions over a polars frame (user_id, arm, exposures, clicks, carted, converted,
revenue); experiments/warehouse.py builds that frame from the dbt marts. docs/experiments.md
defines every figure and the decision rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from experiments.stats import (
    Lift,
    SampleRatio,
    minimum_detectable_effect,
    ratio_estimate,
    relative_lift,
    sample_ratio_check,
)

CONTROL, CANARY = "control", "canary"
# metric -> (numerator column, denominator column; None: per exposed shopper)
METRICS = {
    "ctr": ("clicks", "exposures"),
    "add_to_cart_rate": ("carted", None),
    "conversion_rate": ("converted", None),
    "revenue_per_shopper": ("revenue", None),
}
SHOPPER_SCHEMA = {
    "user_id": pl.Utf8,
    "arm": pl.Utf8,
    "exposures": pl.Int64,
    "clicks": pl.Int64,
    "carted": pl.Int64,  # 1 when the shopper made an attributed add-to-cart
    "converted": pl.Int64,  # 1 when the shopper made an attributed purchase
    "revenue": pl.Float64,  # attributed purchase revenue
}
PROMOTE, ABORT, KEEP = "promote", "abort", "keep_collecting"
# The version of `decide`'s logic (the settings are DecisionRule's): recorded with every
# automated or manual action, so a history line says which rule acted. Bump it when decide()
# changes what it returns for the same figures and settings.
RULE_VERSION = 1


class DecisionRule(BaseModel):
    """When a canary is promoted or aborted (docs/experiments.md, "The decision rule").
    Plain pydantic, as serving.gate.GateThresholds: the `experiment` resource nests it, and
    a bad value is refused with the field's name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary: str = Field("conversion_rate", description="the metric that decides")
    guardrails: list[str] = Field(
        ["revenue_per_shopper", "ctr"], description="metrics that must not be significantly worse"
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="two-sided level of every interval")
    power: float = Field(0.8, gt=0, lt=1, description="for the minimum detectable effect")
    srm_threshold: float = Field(0.001, gt=0, lt=1, description="SRM p-value below which the split is broken")
    # Daily looks at a running test inflate false positives; no promotion before a full week
    # (weekday effects) and a minimum sample.
    min_days: int = Field(7, ge=1, description="no promotion earlier")
    min_shoppers_per_arm: int = Field(500, ge=1, description="no promotion or early abort below it")
    max_days: int = Field(28, ge=1, description="then abort")

    @model_validator(mode="after")
    def _consistent(self):
        unknown = [m for m in (self.primary, *self.guardrails) if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}: use one of {', '.join(METRICS)}")
        if self.min_days > self.max_days:
            raise ValueError("need min_days <= max_days")
        return self


@dataclass(frozen=True)
class MetricReadout:
    metric: str
    control: float | None
    canary: float | None
    lift: Lift
    mde: float | None  # relative, at the current sample size


@dataclass(frozen=True)
class Readout:
    shoppers: dict[str, int]
    exposures: dict[str, int]
    metrics: dict[str, MetricReadout]
    srm: SampleRatio
    days_running: int
    decision: str
    reason: str
    rule: DecisionRule = field(default_factory=DecisionRule)

    def as_dict(self) -> dict:
        return {**asdict(self), "rule": self.rule.model_dump()}


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def metric_readout(
    frame: pl.DataFrame, metric: str, alpha: float = 0.05, power: float = 0.8
) -> MetricReadout:
    numerator, denominator = METRICS[metric]
    estimates = {}
    for arm in (CONTROL, CANARY):
        rows = frame.filter(pl.col("arm") == arm)
        estimates[arm] = ratio_estimate(
            rows[numerator].to_numpy(), rows[denominator].to_numpy() if denominator else None
        )
    lift = relative_lift(estimates[CANARY], estimates[CONTROL], alpha)
    return MetricReadout(
        metric,
        _finite(estimates[CONTROL].value),
        _finite(estimates[CANARY].value),
        lift,
        minimum_detectable_effect(lift.se_log, alpha, power),
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def describe_lift(m: MetricReadout) -> str:
    if m.lift.estimate is None:
        return f"{m.metric} lift undefined"
    return f"{m.metric} {_pct(m.lift.estimate)} [{_pct(m.lift.low)}, {_pct(m.lift.high)}]"


def decide(
    metrics: dict[str, MetricReadout],
    srm: SampleRatio,
    shoppers: dict[str, int],
    days_running: int,
    rule: DecisionRule,
) -> tuple[str, str]:
    """The rule, in order: a broken split aborts; a significantly worse primary aborts; a
    significantly better primary with no significantly worse guardrail promotes once the
    minimum duration and sample are reached; at the maximum duration, anything else aborts
    (the candidate did not prove itself, and control is the safe default); else keep going."""
    if srm.mismatch:
        return ABORT, (
            f"sample ratio mismatch: {srm.canary:,} canary vs {srm.control:,} control shoppers, "
            f"expected share {srm.expected_canary_share:.0%} (p = {srm.p_value:.2g})"
        )
    primary = metrics[rule.primary]
    enough = min(shoppers.values()) >= rule.min_shoppers_per_arm
    if enough and primary.lift.significant_worse:
        return ABORT, f"primary significantly worse: {describe_lift(primary)}"
    worse = [m for m in rule.guardrails if m != rule.primary and metrics[m].lift.significant_worse]
    if primary.lift.significant_better and enough and days_running >= rule.min_days and not worse:
        return PROMOTE, f"primary significantly better: {describe_lift(primary)}"
    if days_running >= rule.max_days:
        why = f"guardrail worse: {describe_lift(metrics[worse[0]])}" if worse else describe_lift(primary)
        return ABORT, f"maximum duration ({rule.max_days} days) reached without a promotion; {why}"
    if worse:
        waiting = f"guardrail significantly worse: {describe_lift(metrics[worse[0]])}"
    elif not enough:
        waiting = f"fewer than {rule.min_shoppers_per_arm:,} shoppers in an arm"
    elif primary.lift.significant_better:
        waiting = f"significant, but before the minimum {rule.min_days} days"
    else:
        mde = primary.mde
        waiting = "not significant" + (
            f"; detectable lift at this sample {mde:.1%}" if mde is not None else ""
        )
    return KEEP, f"{describe_lift(primary)}: {waiting}"


def compute_readout(
    shoppers: pl.DataFrame, canary_share: float, days_running: int, rule: DecisionRule | None = None
) -> Readout:
    """The whole readout from one row per exposed shopper (SHOPPER_SCHEMA)."""
    rule = rule or DecisionRule()
    counts = {arm: shoppers.filter(pl.col("arm") == arm).height for arm in (CONTROL, CANARY)}
    exposures = {
        arm: int(shoppers.filter(pl.col("arm") == arm)["exposures"].sum() or 0) for arm in (CONTROL, CANARY)
    }
    metrics = {name: metric_readout(shoppers, name, rule.alpha, rule.power) for name in METRICS}
    srm = sample_ratio_check(counts[CONTROL], counts[CANARY], canary_share, rule.srm_threshold)
    decision, reason = decide(metrics, srm, counts, days_running, rule)
    return Readout(counts, exposures, metrics, srm, days_running, decision, reason, rule)


def readout_rows(readout: Readout) -> list[dict]:
    """One row per metric, the experiment-wide figures repeated (the history table's grain)."""
    return [
        {
            "metric": m.metric,
            "is_primary": m.metric == readout.rule.primary,
            "control_value": m.control,
            "canary_value": m.canary,
            "lift": m.lift.estimate,
            "lift_low": m.lift.low,
            "lift_high": m.lift.high,
            "p_value": m.lift.p_value,
            "mde": m.mde,
            "control_shoppers": readout.shoppers[CONTROL],
            "canary_shoppers": readout.shoppers[CANARY],
            "control_exposures": readout.exposures[CONTROL],
            "canary_exposures": readout.exposures[CANARY],
            "srm_p_value": readout.srm.p_value,
            "srm_mismatch": readout.srm.mismatch,
            "days_running": readout.days_running,
            "decision": readout.decision,
            "reason": readout.reason,
        }
        for m in readout.metrics.values()
    ]

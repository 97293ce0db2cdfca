"""Readouts built by hand: each metric's interval set directly, so a test of the decision
rule (or of what acts on it) names the verdict it wants without simulating shoppers."""

from experiments.readout import DecisionRule, MetricReadout, Readout, decide
from experiments.stats import Lift, SampleRatio

OK_SPLIT = SampleRatio(1000, 1000, 0.5, 0.0, 1.0, False)
BROKEN = SampleRatio(1000, 1200, 0.5, 18.2, 2e-5, True)
MANY = {"control": 5000, "canary": 5000}


def _metric(name, low, high):
    return MetricReadout(name, 0.1, 0.1, Lift((low + high) / 2, low, high, 0.01, 0.01), 0.05)


def intervals(primary=(-0.01, 0.02), revenue=(-0.01, 0.02), ctr=(-0.01, 0.02)):
    """The four metrics with these 95 % intervals (conversion rate is the default primary)."""
    return {
        "conversion_rate": _metric("conversion_rate", *primary),
        "revenue_per_shopper": _metric("revenue_per_shopper", *revenue),
        "ctr": _metric("ctr", *ctr),
        "add_to_cart_rate": _metric("add_to_cart_rate", -0.5, -0.1),  # not a guardrail
    }


def crafted_readout(metrics=None, srm=OK_SPLIT, shoppers=MANY, days=10, rule=None) -> Readout:
    """A whole readout whose decision is the real rule's on these figures."""
    metrics = metrics or intervals()
    rule = rule or DecisionRule()
    decision, reason = decide(metrics, srm, shoppers, days, rule)
    exposures = {arm: 4 * n for arm, n in shoppers.items()}
    return Readout(shoppers, exposures, metrics, srm, days, decision, reason, rule)

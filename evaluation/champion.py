"""Champion/challenger: before a publish, the candidate configuration and the one behind the
currently published snapshot are both scored on the latest window of the event log; a
candidate whose NDCG@10 falls more than `tolerance` (relative) below the champion's does
not reach shoppers unless someone overrides, and the override is recorded.

Both are trained on the same events (everything before the window) and judged on the
same purchases, so the comparison isolates the configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta

from evaluation.protocol import ShopData, ndcg_at_10, prepare_stage, rank_hybrid
from evaluation.split import TimeSplit
from recommendations.config import RecommendationConfig


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    candidate_ndcg: float | None = None
    champion_ndcg: float | None = None
    champion_snapshot: str | None = None
    tolerance: float = 0.05
    overridden: bool = False
    window: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def config_from_manifest(config: dict) -> RecommendationConfig:
    """The configuration a snapshot was built with, as recorded in its manifest."""
    known = {f.name for f in fields(RecommendationConfig)}
    values = {k: v for k, v in config.items() if k in known}
    for name in ("windows_days", "excluded_product_ids"):
        if name in values:
            values[name] = tuple(values[name])
    return RecommendationConfig(**values)


def _comparable(config: RecommendationConfig) -> dict:
    ignored = {"block_size", "excluded_product_ids"}  # neither changes what shoppers are shown
    return {k: v for k, v in asdict(config).items() if k not in ignored}


def challenge(
    data: ShopData,
    candidate: RecommendationConfig,
    champion: RecommendationConfig | None,
    champion_snapshot: str | None,
    last_day: date,
    window_days: int = 14,
    tolerance: float = 0.05,
    override: bool = False,
) -> Verdict:
    """Score both configurations on the `window_days` ending with `last_day`."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"champion tolerance must be within [0, 1), got {tolerance}")
    if champion is None:
        return Verdict(True, "no published version yet: nothing to compare against", tolerance=tolerance)
    if _comparable(champion) == _comparable(candidate):
        return Verdict(
            True,
            "same configuration as the published version",
            champion_snapshot=champion_snapshot,
            tolerance=tolerance,
        )
    split = TimeSplit(last_day + timedelta(days=1) - timedelta(days=window_days), window_days)
    stage = prepare_stage(data, split.test, candidate)
    label = f"{split.test.start:%Y-%m-%d}..{(split.test.end - timedelta(days=1)):%Y-%m-%d}"
    if not any(len(t) for t in stage.truth["repurchase"]):
        return Verdict(
            True,
            f"no signed-in purchases in {label}: comparison skipped",
            champion_snapshot=champion_snapshot,
            tolerance=tolerance,
            window=label,
        )

    def score(config: RecommendationConfig) -> float:
        policy = "repurchase" if config.allow_repurchase else "new_items"
        scored = stage.with_popularity_half_life(config.popularity_half_life_days)
        ranked = rank_hybrid(config, scored, 10, exclude_bought=not config.allow_repurchase)
        return ndcg_at_10(ranked, scored, policy)

    new, old = score(candidate), score(champion)
    floor = old * (1 - tolerance)
    passed = new >= floor
    message = (
        f"candidate NDCG@10 {new:.4f} vs published {old:.4f} (snapshot {champion_snapshot}) on {label}; "
        f"allowed drop {tolerance:.0%} → floor {floor:.4f}"
    )
    if not passed:
        message += (
            ": BLOCKED, the published version stays. Fix the configuration, or set "
            "`override_champion_gate: true` on the recommender resource to publish anyway (recorded)."
        )
        if override:
            message += " OVERRIDDEN by configuration: publishing anyway."
    return Verdict(
        passed=passed or override,
        message=message,
        candidate_ndcg=round(new, 6),
        champion_ndcg=round(old, 6),
        champion_snapshot=champion_snapshot,
        tolerance=tolerance,
        overridden=override and not passed,
        window=label,
    )

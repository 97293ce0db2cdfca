"""Champion/challenger: before a publish, the candidate configuration (recommendation knobs
and ranker settings) and the one behind the currently published snapshot are both trained
on everything before the latest window of the event log and scored on its purchases; a
candidate whose NDCG@10 falls more than `tolerance` (relative) below the champion's does not
reach shoppers unless someone overrides, and the override is recorded.

Both are trained on the same events and judged on the same purchases, so the comparison
isolates the configuration. Identical configurations skip the comparison (most nights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

from evaluation.protocol import ndcg_at_10, prepare_stage, rank_ranker
from evaluation.split import TimeSplit
from recommendations.config import RecommendationConfig
from recommendations.ranker import RankerSettings, fit_ranker
from recommendations.shop import ShopData


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


@dataclass(frozen=True)
class Candidate:
    """What decides the published lists: the table knobs and the ranker's settings."""

    config: RecommendationConfig
    ranker: RankerSettings

    def comparable(self) -> dict:
        ignored = {"block_size", "excluded_product_ids"}  # neither changes what shoppers are shown
        knobs = self.config.model_dump(exclude=ignored)
        return {"config": knobs, "ranker": asdict(self.ranker)}


def config_from_manifest(config: dict) -> RecommendationConfig:
    """The configuration a snapshot was built with, as recorded in its manifest."""
    # Fields this version no longer has are dropped; the JSON lists become tuples on validation.
    known = RecommendationConfig.model_fields
    return RecommendationConfig.model_validate({k: v for k, v in config.items() if k in known})


def candidate_from_manifest(manifest_config: dict, ranker: dict | None) -> Candidate:
    """A published snapshot's configuration; snapshots from before the ranker have none, and
    compare as the default ranker settings."""
    return Candidate(
        config_from_manifest(manifest_config),
        RankerSettings.from_dict(ranker) if ranker else RankerSettings(),
    )


def challenge(
    data: ShopData,
    candidate: Candidate,
    champion: Candidate | None,
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
    if champion.comparable() == candidate.comparable():
        return Verdict(
            True,
            "same configuration as the published version",
            champion_snapshot=champion_snapshot,
            tolerance=tolerance,
        )
    split = TimeSplit(last_day + timedelta(days=1) - timedelta(days=window_days), window_days)
    stage = prepare_stage(data, split.test, candidate.config)
    label = f"{split.test.start:%Y-%m-%d}..{(split.test.end - timedelta(days=1)):%Y-%m-%d}"
    if not any(len(t) for t in stage.truth["repurchase"]):
        return Verdict(
            True,
            f"no signed-in purchases in {label}: comparison skipped",
            champion_snapshot=champion_snapshot,
            tolerance=tolerance,
            window=label,
        )

    def score(side: Candidate) -> float:
        policy = "repurchase" if side.config.allow_repurchase else "new_items"
        model = fit_ranker(data, split.test.start, side.config, side.ranker)
        return ndcg_at_10(rank_ranker(model, stage, 10, policy), stage, policy)

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

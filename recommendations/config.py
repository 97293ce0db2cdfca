"""The knobs of the nightly recommendation tables, with the defaults a shop starts from.

Plain pydantic models, no Dagster: the recommender library is used by `shopguide evaluate`,
the benchmarks and the tests without an orchestrator. The Dagster `recommender` resource
(assets/resources.py) nests `RecommendationKnobs` so the launchpad validates the same
fields with the same bounds; nothing is copied by hand.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RecommendationKnobs(BaseModel):
    """What a shop may tune from the launchpad (the `tables` part of the recommender resource)."""

    # Frozen: a configuration is compared with a published one (champion/challenger) and
    # recorded in its manifest, so it must not change once built. Unknown fields are refused
    # so that a typo fails instead of silently running with the default.
    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(50, ge=1, description="items per list")
    # Per-user lists come from the learned ranker (recommendations.ranker: its settings are
    # RankerSettings); these knobs shape the tables around it.
    similar_content_weight: float = Field(
        0.6, ge=0, le=1, description="similar products: weight of content against co-occurrence"
    )
    # The real shop's customers re-order the same items: re-buying is allowed unless turned off.
    allow_repurchase: bool = Field(True, description="may a list hold what the shopper already bought")
    max_per_category: int | None = Field(
        None, ge=1, description="diversity: at most this many items of one top category (unset: no cap)"
    )
    popularity_half_life_days: float = Field(14.0, gt=0, description="recency decay of popularity")
    trending_min_count: int = Field(
        3, ge=0, description="purchases a product needs in the window to be trending"
    )
    block_size: int = Field(
        1024, ge=1, description="users scored at once; memory ≈ block_size × products × 4 bytes × 3"
    )


class RecommendationConfig(RecommendationKnobs):
    """The knobs plus what the run supplies: the exclusion list (recommendations/exclusions.yaml),
    the history half-life (shared with the user embeddings: the `encoder` resource's
    `half_life_days`) and the popular lists' windows, which the launchpad never offered."""

    history_half_life_days: float = Field(30.0, gt=0)
    windows_days: tuple[int, ...] = (7, 30)
    excluded_product_ids: tuple[str, ...] = ()

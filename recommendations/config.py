"""The knobs of the nightly recommendation tables, with the defaults a shop starts from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecommendationConfig:
    k: int = 50
    # Per-user lists come from the learned ranker (recommendations.ranker: its settings are
    # RankerSettings); these knobs shape the tables around it.
    similar_content_weight: float = 0.6  # similar products: content vs co-occurrence
    # The real shop's customers re-order the same items: re-buying is allowed unless turned off.
    allow_repurchase: bool = True
    max_per_category: int | None = None  # diversity: at most this many items of one top category
    popularity_half_life_days: float = 14.0
    history_half_life_days: float = 30.0
    windows_days: tuple[int, ...] = (7, 30)
    trending_min_count: int = 3
    block_size: int = 1024  # users scored at once; memory ≈ block_size × products × 4 bytes × 3
    excluded_product_ids: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.similar_content_weight <= 1:
            raise ValueError("similar_content_weight must be within [0, 1]")
        if self.max_per_category is not None and self.max_per_category < 1:
            raise ValueError("max_per_category must be at least 1 (or unset)")
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")

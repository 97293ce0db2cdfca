"""The knobs of the nightly recommendation tables, with the defaults a shop starts from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecommendationConfig:
    k: int = 50
    # score = content_weight·(user·product) + graph_weight·co-occurrence + popularity_weight·popularity
    content_weight: float = 0.5
    graph_weight: float = 0.3
    popularity_weight: float = 0.2
    # + repurchase_weight·history(u, p) / max history(u, ·): the shopper's own decayed history,
    # so regular re-orders come back; only used when repurchase is allowed.
    repurchase_weight: float = 0.0
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
        weights = (self.content_weight, self.graph_weight, self.popularity_weight, self.repurchase_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"score weights must be >= 0 and not all zero, got {weights}")
        if not 0 <= self.similar_content_weight <= 1:
            raise ValueError("similar_content_weight must be within [0, 1]")
        if self.max_per_category is not None and self.max_per_category < 1:
            raise ValueError("max_per_category must be at least 1 (or unset)")
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")

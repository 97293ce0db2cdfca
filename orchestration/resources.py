"""Resources: where the data lives, and the dbt CLI pointed at the project."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource

from embeddings.models import DEFAULT_MODEL
from orchestration.dbt_project import dbt_project
from shopguide.settings import Paths

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


def build_resources() -> dict:
    return {
        "shopguide": ShopguideHome(),
        "dbt": DbtCliResource(project_dir=dbt_project),
        "encoder": EmbeddingEncoder(),
    }

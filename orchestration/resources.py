"""Resources: where the data lives, and the dbt CLI pointed at the project."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import dbt_project
from shopguide.settings import Paths


class ShopguideHome(ConfigurableResource):
    """The data directory. Empty means SHOPGUIDE_HOME from the environment (or its default)."""

    home: str = ""

    def paths(self) -> Paths:
        paths = Paths(Path(self.home).expanduser().resolve()) if self.home else Paths.from_env()
        return paths.ensure()


def build_resources() -> dict:
    return {
        "shopguide": ShopguideHome(),
        "dbt": DbtCliResource(project_dir=dbt_project),
    }

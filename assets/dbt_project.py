"""The dbt project as Dagster sees it. `prepare_if_dev` re-parses under `dagster dev`;
elsewhere the manifest comes from `shopguide setup` / `dbt parse` (see docs/operations.md)."""

from dagster_dbt import DbtProject

from core.dbt_manifest import DBT_DIR

dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)
dbt_project.prepare_if_dev()

"""The dbt project as Dagster sees it. `prepare_if_dev` re-parses under `dagster dev`;
elsewhere the manifest comes from `shopguide setup` / `dbt parse` (see docs/operations.md)."""

from dagster_dbt import DbtProject

from core.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()

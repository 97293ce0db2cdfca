"""The dbt CLI resource, without the fixed costs dagster-dbt adds to every invocation.

Measured in the nightly's dbt step (bench/bench_pipeline.py, Online Retail): 10.5 s passed
between the step's start and dbt's own start, before any model ran, on a loaded machine:
- `dbt --version`, run once per process to learn the CLI's version. It asks the package
  index for the latest release (the house rule is no network at run time): 15 s wall, 1.9 s
  CPU here; offline it waits for its timeouts. The dbt that runs is the pinned dbt-core
  package beside this interpreter (core/dbt_manifest.py DBT_EXECUTABLE), so its version is
  read from the package's metadata.
- A dbt adapter built in this process (macros loaded: 1.4 s CPU) only to read column
  metadata or row counts after a model is built (`fetch_column_metadata`/`fetch_row_counts`),
  which the assets do not ask for; and it could not open the DuckDB file while dbt holds it.
"""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import version as package_version

from dagster_dbt import DbtCliResource
from packaging import version


class ShopDbtCliResource(DbtCliResource):
    """DbtCliResource that knows its dbt's version and builds no in-process adapter."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(package_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None  # dagster-dbt then skips column metadata and row counts (never asked for)

"""The dbt project as partitioned Dagster assets: staging → intermediate → marts.

Each run builds the models over its landing-day window (one day nightly, a whole range
in a backfill) and runs the dbt data tests, which Dagster shows as asset checks.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, in_process_executor
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from assets.dbt_args import dbt_build_args, dbt_selection_env, dbt_window_env, landing_days, landing_window
from assets.dbt_project import dbt_project
from assets.partitions import daily_partitions
from assets.preloads import later_step_loads
from assets.resources import EmbeddingEncoder, SearchEncoder, ShopguideHome
from core.background import alongside
from core.settings import Paths
from warehouse.lake import check_spark_runtime, export_event_log
from warehouse.store import connect

# nightly_job's executor, and the one `execute_in_process` (`shopguide run`) swaps in.
IN_PROCESS_EXECUTORS = (in_process_executor.name, "execute_in_process_executor")


class ShopDbtTranslator(DagsterDbtTranslator):
    """dbt sources map to the Dagster assets that write them (`raw_events`, not `shop/raw_events`)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    dagster_dbt_translator=ShopDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
)
def shop_dbt_models(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    shopguide: ShopguideHome,
    encoder: EmbeddingEncoder,
    search_encoder: SearchEncoder,
):
    # dbt's profile reads SHOPGUIDE_HOME; make it match the resource's data directory.
    paths = shopguide.paths()
    paths.export()
    first, last = landing_window(context.partition_time_window.start, context.partition_time_window.end)
    target = shopguide.dbt_target
    if target == "spark":
        # Spark cannot open the DuckDB file: it reads the window's event log as Parquet.
        check_spark_runtime()
        with connect(paths.warehouse, read_only=True) as con:
            rows = export_event_log(con, paths.lake, landing_days(first, last))
        context.log.info(f"event log {first}..{last}: {rows} rows exported to {paths.lake} for Spark")
    context.log.info(f"dbt build on {target} over landing days {first}..{last}")
    # While dbt's process works, this one only waits: load what later steps need meanwhile.
    # Only when the later steps run in this process too (nightly_job's executor, however it
    # is launched); under the multiprocess executor each step is a process of its own.
    # Chosen before dbt starts, so that nothing raised here can leave dbt's process behind.
    loads = []
    if context.job_def.executor_def.name in IN_PROCESS_EXECUTORS:
        loads = later_step_loads(context.job_def.asset_layer.selected_asset_keys, encoder, search_encoder)
    # The dbt process copies this process's environment when it starts (inside `cli`).
    with environment({**dbt_window_env(first, last), **dbt_selection_env(os.environ)}):
        invocation = dbt.cli(dbt_build_args(target), context=context, target_path=fresh_target(paths, target))
    with alongside(loads) as preloaded:
        yield from invocation.stream()
    if loads:
        context.log.info(f"loaded for later steps while dbt ran: {preloaded.describe()}")


def fresh_target(paths: Paths, target: str) -> Path:
    """This home's dbt target folder, without the last run's results. dagster-dbt's default
    is a new folder under dbt_project/target per invocation, holding a copy of the
    partial_parse.msgpack that `shopguide setup` wrote for the default home: any other home's
    profile differs (its DuckDB path), so every run re-parsed the whole project (3.9 CPU s
    of a 17 s dbt step on Online Retail), and the folders piled up in the repository. Kept
    per home, dbt's own partial parse is reused from the second run on; run_results.json is
    removed so that a dbt that fails before writing it cannot be read as the last run's."""
    folder = paths.dbt_target(target)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_results.json").unlink(missing_ok=True)
    return folder


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

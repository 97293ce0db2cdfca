"""Launch the nightly job through Dagster, recorded in the instance under SHOPGUIDE_HOME.

Runs execute in this process (the in-process executor: ~10 ms per step instead of ~2 s
for a subprocess per step), but they are ordinary Dagster runs: they show in the UI
with their logs, materialisations and check results, exactly like scheduled ones.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from core.errors import BadInput
from core.settings import DBT_TARGETS, Paths
from shopguide.run_records import describe, fail_orphaned_runs, live_runs, process_tags
from shopguide.runlock import RunInfo, RunInProgress, exclusive_run, this_command

if TYPE_CHECKING:
    from dagster import AssetSelection


class RunFailed(RuntimeError):
    pass


def print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    first_day: date
    last_day: date
    success: bool
    failed_checks: list[str]  # ERROR severity: blocking
    warnings: list[str] = field(default_factory=list)  # WARN severity: visible, not blocking


def validate_range(first: date, last: date) -> None:
    from assets.partitions import FIRST_LANDING_DAY, daily_partitions

    if last < first:
        raise BadInput(f"--end {last} is before --start {first}.")
    earliest = date.fromisoformat(FIRST_LANDING_DAY)
    if first < earliest:
        raise BadInput(f"{first} is before the first partition ({earliest}).")
    last_key = daily_partitions.get_last_partition_key()
    if last_key is None or last > date.fromisoformat(last_key):
        raise BadInput(f"{last} has no partition yet: the latest complete landing day is {last_key} (UTC).")


def run_range(
    paths: Paths,
    first: date,
    last: date,
    recommender: dict | None = None,
    job_name: str = "nightly_job",
    selection: AssetSelection | None = None,
    notify: Callable[[str], None] = print_to_stderr,
    target: str = "duckdb",
) -> RunOutcome:
    """Materialise a job (the nightly one unless told) for landing days first..last in one
    run. `recommender` overrides fields of the recommender resource for this run (as the
    launchpad would); `selection` runs only those of the job's assets (with their checks),
    e.g. `AssetSelection.assets("product_embeddings").upstream()`. `target` is the dbt
    target the models build on (core.settings.DBT_TARGETS); on `spark` the run covers the
    event log and the dbt models only, since the Python assets read the marts from DuckDB
    (docs/architecture.md, "The dbt project on Spark").

    One run at a time per home: RunInProgress when another holds it (shopguide/runlock.py).
    Runs an earlier process left STARTED when it died are marked failed first, each said in
    one line through `notify`."""
    validate_range(first, last)
    if target not in DBT_TARGETS:
        raise BadInput(f"--target {target!r}: use one of {', '.join(DBT_TARGETS)}.")
    if target == "spark":
        from warehouse.lake import check_spark_runtime

        check_spark_runtime()  # no Java: one line now, not a JVM trace minutes into the run
    if recommender:
        from assets.resources import recommender_settings

        recommender_settings(recommender)  # a wrong value: one line now, not a failed run
    paths.ensure().export()
    run_id = str(uuid.uuid4())  # chosen here, so that the lock can name the run before it starts
    info = RunInfo(
        run_id=run_id,
        job=job_name,
        first_day=first.isoformat(),
        last_day=last.isoformat(),
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        pid=os.getpid(),
        command=this_command(),
    )
    # Before anything else (loading the definitions takes seconds): a second run is refused
    # here, without having touched the warehouse.
    with exclusive_run(paths, info):
        return _run_locked(paths, info, recommender, selection, notify, target)


def _run_locked(paths: Paths, info: RunInfo, recommender, selection, notify, target) -> RunOutcome:
    # Imported here: loading the definitions costs seconds and needs the dbt manifest.
    import warnings

    from dagster import AssetCheckSeverity, BetaWarning, DagsterInstance

    warnings.filterwarnings("ignore", category=BetaWarning)  # BackfillPolicy is beta; we rely on it knowingly

    from core import dbt_manifest
    from shopguide.inventory import record_figures

    with DagsterInstance.get() as instance:
        for line in fail_orphaned_runs(instance):
            notify(line)
        others = live_runs(instance)  # launched from the UI: they do not take our lock
        if others:
            raise RunInProgress(
                f"another run is working on {paths.home}: {describe(others[0], instance)}. Wait for "
                "it, or terminate it in the Dagster UI (`shopguide ui` → Runs), then try again."
            )
    # What `shopguide status` shows while this run holds the warehouse.
    record_figures(paths, info.run_id, "before", only_if_stale=True)
    dbt_manifest.ensure_manifest()  # the definitions cannot load without it (first use, before `setup`)
    from orchestration.definitions import defs

    job = defs.resolve_job_def(info.job)
    asset_keys = None if selection is None else job_asset_keys(job, selection)
    if target != "duckdb":
        job, asset_keys = warehouse_subset(job, asset_keys), None
    tags = {
        "dagster/asset_partition_range_start": info.first_day,
        "dagster/asset_partition_range_end": info.last_day,
        "shopguide/launched_by": "cli",
        **process_tags(),  # so that the next start can tell if this process died mid-run
    }
    # Step logs stay in the instance (the UI shows them); the terminal gets warnings only.
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if recommender:
        run_config["resources"] = {"recommender": {"config": recommender}}
    if target != "duckdb":
        run_config.setdefault("resources", {})["shopguide"] = {"config": {"dbt_target": target}}
    try:
        with DagsterInstance.get() as instance:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                tags=tags,
                raise_on_error=False,
                asset_selection=asset_keys,
                run_id=info.run_id,
            )
    finally:
        record_figures(paths, info.run_id, "after")
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]

    def names(evaluations):
        return [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations]

    errors = [e for e in failed if e.severity == AssetCheckSeverity.ERROR]
    warnings_ = [e for e in failed if e.severity != AssetCheckSeverity.ERROR]
    first, last = date.fromisoformat(info.first_day), date.fromisoformat(info.last_day)
    return RunOutcome(result.run_id, first, last, result.success, names(errors), names(warnings_))


def warehouse_subset(job, asset_keys: list | None = None):
    """The part of `job` that runs on another dbt target: the event log and the dbt models
    (of `asset_keys` when given), with the event log's checks and dbt's tests, but not the
    Python checks on the marts (great-expectations), which read the marts from DuckDB."""
    from dagster import AssetSelection

    from assets.dbt import shop_dbt_models
    from assets.quality import ERRORS, WARNINGS

    dbt_keys = set(shop_dbt_models.keys)
    wanted = set(job_asset_keys(job, AssetSelection.assets("raw_events", *dbt_keys)))
    if asset_keys is not None:
        wanted &= set(asset_keys)
    if not wanted:
        raise BadInput(f"{job.name}: the selection has no event-log or dbt asset to run on another target")
    python_checks_on_marts = {(key, name) for key in dbt_keys for name in (ERRORS, WARNINGS)}
    checks = {
        check
        for check in job.asset_layer.asset_graph.asset_check_keys
        if check.asset_key in wanted and (check.asset_key, check.name) not in python_checks_on_marts
    }
    return job.get_subset(asset_selection=wanted, asset_check_selection=checks)


def job_asset_keys(job, selection: AssetSelection) -> list:
    """The asset keys of `job` that `selection` picks; one that is not in the job is refused."""
    from dagster import DagsterInvalidSubsetError

    try:
        keys = selection.resolve(job.asset_layer.asset_graph)
    except DagsterInvalidSubsetError as error:
        raise BadInput(f"{job.name} cannot run that selection: {error}") from None
    if not keys:
        raise BadInput(f"the selection picks none of {job.name}'s assets")
    return sorted(keys)

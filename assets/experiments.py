"""The online experiment's readout as a daily asset: thin over experiments/ (statistics) and
experiments/warehouse.py (inputs, history table)."""

from datetime import UTC, datetime, timedelta

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from assets.dbt_args import landing_window
from assets.partitions import daily_partitions
from assets.resources import ExperimentSettings, ShopguideHome
from experiments.automation import act_on_readout
from experiments.warehouse import latest_day, readout_as_of, record_readout, running_experiment
from serving import serving_root
from warehouse.store import connect


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:+.2%}"


@asset(
    deps=[
        AssetKey(n)
        for n in (
            "fct_recommendation_exposures",
            "fct_recommendation_clicks",
            "fct_recommendation_attributions",
        )
    ],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="experiments",
    owners=["team:ml"],
    kinds={"duckdb"},
    description=(
        "The running canary's A/B readout as of each landing day of the run: exposures, CTR, "
        "add-to-cart rate, conversion and revenue per exposed shopper per arm, relative lifts with "
        "95% intervals (delta method, shopper level), the sample-ratio check, the minimum detectable "
        "effect and the decision rule's verdict (docs/experiments.md). Rows go to the warehouse table "
        "experiment_readouts. With the `experiment` resource's automation on (off by default), the "
        "latest day's verdict promotes or aborts the canary and the serving history records why."
    ),
)
def experiment_readout(
    context: AssetExecutionContext, shopguide: ShopguideHome, experiment: ExperimentSettings
) -> MaterializeResult:
    paths = shopguide.paths()
    rule = experiment.decision_rule()
    running = running_experiment(serving_root(paths))
    if running is None:
        return MaterializeResult(metadata={"skipped": "no canary is running"})
    first, last = landing_window(context.partition_time_window.start, context.partition_time_window.end)
    computed_at = datetime.now(UTC).replace(tzinfo=None)
    latest, latest_as_of, days = None, None, 0
    with connect(paths.warehouse) as con:
        day = first
        while day <= last:
            result = readout_as_of(con, running, day, rule)
            if result is not None:
                record_readout(con, running, day, result[0], context.run_id, computed_at)
                latest, latest_as_of, days = result, day, days + 1
            day += timedelta(days=1)
        newest_data = latest_day(con)
    if latest is None:
        return MaterializeResult(metadata={"skipped": f"no exposure of canary {running.snapshot_id} yet"})
    readout, in_both = latest
    context.log.info(f"experiment {running.snapshot_id}: {readout.decision}: {readout.reason}")
    # After the rows are written: the history line then points at a recorded readout.
    automation = act_on_readout(
        serving_root(paths),
        running.snapshot_id,
        readout,
        latest_as_of,
        newest_data,
        experiment.automation,
        context.run_id,
    )
    (context.log.warning if automation.action else context.log.info)(f"automation: {automation.message}")
    return MaterializeResult(
        metadata={
            "snapshot_id": running.snapshot_id,
            "canary_percent": running.canary_percent,
            "days_recorded": days,
            "decision": readout.decision,
            "reason": readout.reason,
            "automation": experiment.automation.value,
            "automation_action": automation.action or "none",
            "automation_message": automation.message,
            "shoppers_control": readout.shoppers["control"],
            "shoppers_canary": readout.shoppers["canary"],
            "shoppers_in_both_arms_dropped": in_both,
            "srm_p_value": MetadataValue.float(readout.srm.p_value)
            if readout.srm.p_value is not None
            else "n/a",
            "lifts": MetadataValue.md(
                "| metric | control | canary | lift | 95% CI | MDE |\n|---|---|---|---|---|---|\n"
                + "\n".join(
                    f"| {m.metric} | {m.control} | {m.canary} | {_pct(m.lift.estimate)} | "
                    f"{_pct(m.lift.low)} .. {_pct(m.lift.high)} | {_pct(m.mde)} |"
                    for m in readout.metrics.values()
                )
            ),
        }
    )

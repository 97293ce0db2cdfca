"""The readout's inputs from the warehouse, and its history table.

The experiment is the running canary: its snapshot id and share come from the serving
pointer; it starts at 00:00 UTC of the day of the first exposure logged for that snapshot in
the canary arm (not at the wall-clock time of `publish --canary`: the data decide, so
backfills and replays of old days read the same), and the control arm is every signed-in
control exposure from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from core.errors import ShopguideError
from experiments.readout import SHOPPER_SCHEMA, DecisionRule, Readout, compute_readout, readout_rows
from serving.publish import read_pointer
from warehouse.store import connect, replace_rows

READOUTS_TABLE = "experiment_readouts"
READOUTS_DDL = f"""
create table if not exists {READOUTS_TABLE} (
    snapshot_id        varchar   not null,  -- the canary's snapshot
    as_of              date      not null,  -- figures over exposures up to the end of this day
    computed_at        timestamp not null,  -- UTC
    run_id             varchar   not null,
    canary_percent     integer   not null,
    metric             varchar   not null,
    is_primary         boolean   not null,
    control_value      double,
    canary_value       double,
    lift               double,              -- canary / control − 1; null when undefined
    lift_low           double,              -- 95 % interval (1 − alpha in general)
    lift_high          double,
    p_value            double,
    mde                double,              -- relative minimum detectable effect
    control_shoppers   integer   not null,
    canary_shoppers    integer   not null,
    control_exposures  bigint    not null,
    canary_exposures   bigint    not null,
    srm_p_value        double,
    srm_mismatch       boolean   not null,
    days_running       integer   not null,
    decision           varchar   not null,  -- promote | abort | keep_collecting
    reason             varchar   not null
)
"""
MARTS = ("fct_recommendation_exposures", "fct_recommendation_clicks", "fct_recommendation_attributions")


class NoExperiment(ShopguideError):
    """No canary runs, or the warehouse holds no exposure of it yet."""


@dataclass(frozen=True)
class Experiment:
    snapshot_id: str
    canary_percent: int

    @property
    def canary_share(self) -> float:
        return self.canary_percent / 100


def running_experiment(serving_root: Path) -> Experiment | None:
    canary = read_pointer(serving_root).get("canary")
    return Experiment(canary["snapshot"], int(canary["percent"])) if canary else None


def _has_tables(con) -> bool:
    sql = "select count(*) from information_schema.tables where table_name in ?"
    return con.execute(sql, [list(MARTS)]).fetchall()[0][0] == len(MARTS)


def experiment_start(con, snapshot_id: str) -> datetime | None:
    """00:00 UTC of the day of the canary's first exposure. Whole days: days_running counts
    them, and a control exposure earlier that day showed the current snapshot as it would
    have anyway."""
    if not _has_tables(con):
        return None
    sql = "select min(event_date) from fct_recommendation_exposures where arm = 'canary' and snapshot_id = ?"
    first = con.execute(sql, [snapshot_id]).fetchall()[0][0]
    return datetime.combine(first, time()) if first else None


# One row per signed-in shopper and arm over [start, end): exposures, clicks, and whether the
# shopper made an attributed add-to-cart / purchase (and its revenue). A response counts when
# both it and its exposure fall inside the window.
_SHOPPERS_SQL = """
with exposures as (
    select user_id, arm, count(*) as exposures
    from fct_recommendation_exposures
    where user_id is not null and occurred_at >= $start and occurred_at < $end
      and (arm = 'control' or snapshot_id = $snapshot)
    group by all
),
clicks as (
    select user_id, arm, count(*) as clicks
    from fct_recommendation_clicks
    where user_id is not null and occurred_at >= $start and occurred_at < $end
      and (arm = 'control' or snapshot_id = $snapshot)
    group by all
),
responses as (
    select user_id, arm,
        max(case when response_type = 'add_to_cart' then 1 else 0 end) as carted,
        max(case when response_type = 'purchase' then 1 else 0 end) as converted,
        coalesce(sum(revenue) filter (where response_type = 'purchase'), 0)::double as revenue
    from fct_recommendation_attributions
    where exposure_at >= $start and occurred_at < $end
      and (arm = 'control' or snapshot_id = $snapshot)
    group by all
)
select e.user_id, e.arm, e.exposures,
    coalesce(c.clicks, 0) as clicks,
    coalesce(r.carted, 0) as carted,
    coalesce(r.converted, 0) as converted,
    coalesce(r.revenue, 0.0) as revenue
from exposures e
left join clicks c using (user_id, arm)
left join responses r using (user_id, arm)
order by e.user_id, e.arm
"""


def shopper_rows(con, snapshot_id: str, start: datetime, end: datetime) -> tuple[pl.DataFrame, int]:
    """(one row per exposed shopper, shoppers dropped for having been in both arms).

    A shopper seen in both arms (the canary's share was raised mid-test, or a tracker bug)
    belongs to neither cleanly; they are left out and counted, not split."""
    params = {"start": start, "end": end, "snapshot": snapshot_id}
    frame = con.sql(_SHOPPERS_SQL, params=params).pl()
    frame = frame.cast({k: v for k, v in SHOPPER_SCHEMA.items()})
    both = frame.group_by("user_id").len().filter(pl.col("len") > 1)["user_id"]
    return frame.filter(~pl.col("user_id").is_in(both.implode())), both.len()


def readout_as_of(
    con, experiment: Experiment, as_of: date, rule: DecisionRule | None = None
) -> tuple[Readout, int] | None:
    """The readout over the experiment's exposures up to the end of `as_of` (None before it
    started), with the number of shoppers left out for being in both arms."""
    start = experiment_start(con, experiment.snapshot_id)
    end = datetime.combine(as_of + timedelta(days=1), time())
    if start is None or start >= end:
        return None
    shoppers, in_both = shopper_rows(con, experiment.snapshot_id, start, end)
    days = int((end - start) / timedelta(days=1))
    return compute_readout(shoppers, experiment.canary_share, days, rule), in_both


def latest_day(con) -> date | None:
    """The last day with an exposure or an attributed response (a purchase minutes after the
    day's last exposure may fall on the next day)."""
    if not _has_tables(con):
        return None
    sql = """select greatest(
        (select max(event_date) from fct_recommendation_exposures),
        (select max(response_date) from fct_recommendation_attributions))"""
    return con.execute(sql).fetchall()[0][0]


def current_readout(warehouse: Path, experiment: Experiment, rule: DecisionRule | None = None):
    """The readout over everything logged so far (read-only); NoExperiment when none."""
    with connect(warehouse, read_only=True) as con:
        last = latest_day(con)
        result = readout_as_of(con, experiment, last, rule) if last else None
    if result is None:
        raise NoExperiment(
            f"no exposure of canary snapshot {experiment.snapshot_id} in the warehouse yet "
            "(recommendation_shown events with arm canary and that snapshot_id)."
        )
    return result


def record_readout(
    con, experiment: Experiment, as_of: date, readout: Readout, run_id: str, computed_at: datetime
) -> int:
    """Replace the rows of (snapshot, as_of): a re-run of a day leaves one readout for it."""
    con.execute(READOUTS_DDL)
    frame = pl.DataFrame(readout_rows(readout)).with_columns(
        snapshot_id=pl.lit(experiment.snapshot_id),
        as_of=pl.lit(as_of),
        computed_at=pl.lit(computed_at),
        run_id=pl.lit(run_id),
        canary_percent=pl.lit(experiment.canary_percent, dtype=pl.Int32),
    )
    columns = [c.split()[0] for c in READOUTS_DDL.strip().splitlines()[1:-1]]
    table = frame.select(columns).to_arrow()
    return replace_rows(
        con, READOUTS_TABLE, "snapshot_id = ? and as_of = ?", [experiment.snapshot_id, as_of], table
    )


def read_readouts(con) -> pl.DataFrame:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = ?", [READOUTS_TABLE]
    ).fetchall()[0][0]
    if not exists:
        return pl.DataFrame()
    return con.sql(f"select * from {READOUTS_TABLE} order by snapshot_id, as_of, metric").pl()

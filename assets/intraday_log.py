"""The event log as the intraday refresh reads it: the marts up to the snapshot's landing
day, plus the landing days after it straight from raw_events, staged in SQL the way dbt's
staging and fct_events models stage them (trimmed ids, upper-case products, first ingestion
of a duplicate event id, country and merchandise flag from the properties).

Why not run dbt: dbt's incremental models cost ~20 s a day here (most of the 60 s budget)
and are rebuilt by the nightly run anyway; the refresh only needs the events of the
shoppers' histories, which these few columns are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

# What int_events_sessionized leaves out of fct_events: not shopper events.
NOT_SHOPPER_EVENTS = (
    "product_upserted",
    "product_delisted",
    "recommendation_shown",
    "recommendation_clicked",
)
COLUMNS = ["user_id", "session_id", "product_id", "event_type", "occurred_at", "country", "is_merchandise"]

NIGHT_SQL = f"""
    select {", ".join(COLUMNS)}, event_id
    from fct_events
    where landed_on <= ?
"""

# stg_shop__events + fct_events for the landing days after the snapshot's, with the source
# file kept so that the refresh knows which shoppers each new file touched.
INTRADAY_SQL = f"""
    with renamed as (
        select
            event_id,
            nullif(trim(user_id), '') as user_id,
            nullif(trim(session_id), '') as session_id,
            upper(nullif(trim(product_id), '')) as product_id,
            lower(event_type) as event_type,
            occurred_at,
            properties ->> 'country' as country,
            coalesce(try_cast(properties ->> 'merchandise' as boolean), true) as is_merchandise,
            _partition_date as landed_on,
            _source_file as source_file,
            _line_number as source_line
        from raw_events
        where _partition_date > ?
    ),
    deduplicated as (
        select * from renamed
        qualify row_number() over (partition by event_id order by landed_on, source_file, source_line) = 1
    )
    select {", ".join(COLUMNS)}, event_id, landed_on, source_file
    from deduplicated
    where event_type not in {NOT_SHOPPER_EVENTS}
      and event_id not in (select event_id from fct_events where landed_on <= ?)
"""

# dim_users' country: the one a shopper used most, ties alphabetically (dim_users.sql).
COUNTRY_SQL = """
    select user_id, mode(country order by country) as country
    from touched_events
    group by user_id
"""


@dataclass
class IntradayLog:
    products: pl.DataFrame  # dim_products
    users: pl.DataFrame  # dim_users (user_id, country), the touched shoppers' country updated
    events: pl.DataFrame  # COLUMNS: the night's events and the intraday ones
    intraday: pl.DataFrame  # COLUMNS + event_id, landed_on, source_file: the intraday ones


def read_log(con: duckdb.DuckDBPyConnection, base_day: date, touched_files: set[str]) -> IntradayLog:
    """The log as of now; `touched_files` (landing-relative paths) decide whose country is
    recomputed: the shoppers with an event in them."""
    products = con.sql("select * from dim_products").pl()
    users = con.sql("select user_id, country from dim_users").pl()
    night = con.sql(NIGHT_SQL, params=[base_day]).pl()
    intraday = con.sql(INTRADAY_SQL, params=[base_day, base_day]).pl()
    touched = shoppers_in(intraday, touched_files)
    if touched:
        ids = pl.Series("user_id", touched, dtype=pl.Utf8).implode()
        touched_events = pl.concat(  # noqa: F841 - read by name in COUNTRY_SQL
            [
                night.filter(pl.col("user_id").is_in(ids)).select("user_id", "country"),
                intraday.filter(pl.col("user_id").is_in(ids)).select("user_id", "country"),
            ]
        )
        countries = con.sql(COUNTRY_SQL).pl()
        users = pl.concat([users.filter(~pl.col("user_id").is_in(ids)), countries], how="vertical_relaxed")
    events = pl.concat([night.select(COLUMNS), intraday.select(COLUMNS)], how="vertical_relaxed")
    return IntradayLog(products, users, events, intraday)


def shoppers_in(intraday: pl.DataFrame, files: set[str]) -> list[str]:
    """The signed-in shoppers with an event in `files`, sorted."""
    rows = intraday.filter(pl.col("source_file").is_in(sorted(files)) & pl.col("user_id").is_not_null())
    return sorted(rows["user_id"].unique().to_list())

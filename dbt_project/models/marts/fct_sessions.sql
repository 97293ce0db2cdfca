{#-
    Incremental by actor: a late event can merge or split an actor's sessions, so every
    actor with an event in the window has all their sessions recomputed. delete+insert on
    actor_key deletes exactly those actors' old sessions before inserting the new ones.
    On Spark (Parquet tables, no DELETE) it is rebuilt whole each run: macros/dialect.sql.
-#}
-- depends_on: {{ ref('stg_shop__events') }}
{{ config(**replacing_incremental(unique_key='actor_key')) }}

with

events as (

    select * from {{ ref('int_events_sessionized') }}
    {% if is_incremental() %}
    where actor_key in (
        select distinct {{ actor_key() }}
        from {{ ref('stg_shop__events') }}
        where {{ in_landing_window('landed_on') }}
          and event_type not in ('product_upserted', 'product_delisted')
    )
    {% endif %}

)

select
    session_key,
    actor_key,
    any_value(user_id) as user_id,
    session_number,
    min(occurred_at) as started_at,
    max(occurred_at) as ended_at,
    cast(min(occurred_at) as date) as session_date,
    {{ seconds_between('min(occurred_at)', 'max(occurred_at)') }} as duration_seconds,
    count(*) as events,
    count(*) filter (where event_type = 'view') as views,
    count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
    count(*) filter (where event_type = 'purchase') as purchases,
    count(*) filter (where event_type = 'search') as searches,
    coalesce(sum(cast(quantity * price as decimal(18, 4))) filter (where event_type = 'purchase'), 0) as revenue,
    count(*) filter (where event_type = 'purchase') > 0 as converted
from events
group by session_key, actor_key, session_number

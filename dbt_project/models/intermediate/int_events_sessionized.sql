{#-
    Shopper events (catalog and recommendation exposure events excluded: the exposure log has
    its own models, int_recommendation_items_shown and fct_recommendation_*) numbered into sessions: a session ends
    after `session_timeout_minutes` without an event from the same shopper. A signed-in
    shopper is one actor across devices; a guest is one actor per producer session_id.
-#}
with

shopper_events as (

    select
        *,
        {{ actor_key() }} as actor_key
    from {{ ref('stg_shop__events') }}
    where event_type not in (
        'product_upserted', 'product_delisted', 'recommendation_shown', 'recommendation_clicked'
    )

),

gaps as (

    select
        *,
        case
            when lag(occurred_at) over by_actor is null then 1
            when occurred_at - lag(occurred_at) over by_actor
                > interval '{{ var("session_timeout_minutes") }} minutes' then 1
            else 0
        end as starts_session
    from shopper_events
    window by_actor as (partition by actor_key order by occurred_at, event_id)

),

numbered as (

    select
        *,
        sum(starts_session) over (
            partition by actor_key order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from gaps

)

select
    *,
    md5(actor_key || ':' || cast(session_number as {{ dbt.type_string() }})) as session_key
from numbered

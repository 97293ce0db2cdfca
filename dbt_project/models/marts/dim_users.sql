with

events as (

    select * from {{ ref('fct_events') }}
    where user_id is not null

),

sessions as (

    select user_id, count(*) as sessions
    from {{ ref('fct_sessions') }}
    where user_id is not null
    group by user_id

)

select
    events.user_id,
    min(events.occurred_at) as first_seen_at,
    max(events.occurred_at) as last_seen_at,
    -- The country a shopper used most; ties broken alphabetically so reruns agree.
    {{ mode_smallest('events.country') }} as country,
    any_value(sessions.sessions) as sessions,
    count(distinct events.session_id) filter (where events.event_type = 'purchase') as orders,
    count(*) filter (where events.event_type = 'purchase') as purchase_lines,
    count(*) filter (where events.event_type = 'return') as return_lines,
    coalesce(sum(events.revenue), 0) as net_revenue
from events
left join sessions using (user_id)
group by events.user_id

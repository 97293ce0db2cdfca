{#-
    Incremental by event date: every event_date touched by an event that landed in the
    window is recomputed whole from fct_events, so a late event updates the day it
    occurred on. delete+insert on event_date replaces exactly those days (on Spark, an
    insert_overwrite of those event_date partitions: the same rows).
-#}
-- depends_on: {{ ref('fct_events') }}
{{ config(**replacing_incremental(unique_key='event_date', spark_partition='event_date')) }}

with

events as (

    select * from {{ ref('fct_events') }}
    where product_id is not null
    {% if is_incremental() %}
      and event_date in (
        select distinct event_date from {{ ref('fct_events') }} where {{ in_landing_window('landed_on') }}
      )
    {% endif %}

)

select
    event_date || '|' || product_id as daily_product_key,
    event_date,
    product_id,
    count(*) filter (where event_type = 'view') as views,
    count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
    count(*) filter (where event_type = 'purchase') as purchases,
    coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as units_sold,
    count(*) filter (where event_type = 'return') as returns,
    coalesce(sum(revenue), 0) as net_revenue,
    count(distinct coalesce(user_id, 'guest:' || session_id)) as shoppers,
    case
        when count(*) filter (where event_type = 'view') > 0
        then round(
            count(*) filter (where event_type = 'purchase')
            / count(*) filter (where event_type = 'view'), 6)
    end as view_to_purchase_rate
from events
group by event_date, product_id

{#-
    Per day × snapshot × arm: exposures, shoppers exposed, clicks and attributed responses,
    each counted on the day it happened (a purchase the day after its exposure counts on the
    purchase's day). Shoppers are counted per day; the experiment readout counts them over
    its whole window from the fact tables instead (a shopper on two days is one shopper).
-#}
with

exposures as (

    select event_date as day, snapshot_id, arm,
        count(*) as exposures,
        count(distinct user_id) as exposed_shoppers
    from {{ ref('fct_recommendation_exposures') }}
    group by all

),

clicks as (

    select event_date as day, snapshot_id, arm, count(*) as clicks
    from {{ ref('fct_recommendation_clicks') }}
    group by all

),

responses as (

    select response_date as day, snapshot_id, arm,
        count(*) filter (where response_type = 'add_to_cart') as attributed_add_to_carts,
        count(*) filter (where response_type = 'purchase') as attributed_purchases,
        count(distinct user_id) filter (where response_type = 'purchase') as converted_shoppers,
        coalesce(sum(revenue) filter (where response_type = 'purchase'), 0) as attributed_revenue
    from {{ ref('fct_recommendation_attributions') }}
    group by all

),

keys as (

    select day, snapshot_id, arm from exposures
    union
    select day, snapshot_id, arm from clicks
    union
    select day, snapshot_id, arm from responses

)

select
    cast(keys.day as {{ dbt.type_string() }}) || '|' || keys.snapshot_id || '|' || keys.arm as arm_day_key,
    keys.day,
    keys.snapshot_id,
    keys.arm,
    coalesce(exposures.exposures, 0) as exposures,
    coalesce(exposures.exposed_shoppers, 0) as exposed_shoppers,
    coalesce(clicks.clicks, 0) as clicks,
    coalesce(responses.attributed_add_to_carts, 0) as attributed_add_to_carts,
    coalesce(responses.attributed_purchases, 0) as attributed_purchases,
    coalesce(responses.converted_shoppers, 0) as converted_shoppers,
    coalesce(responses.attributed_revenue, 0) as attributed_revenue
from keys
left join exposures using (day, snapshot_id, arm)
left join clicks using (day, snapshot_id, arm)
left join responses using (day, snapshot_id, arm)

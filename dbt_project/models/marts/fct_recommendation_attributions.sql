{#-
    Last-touch attribution. A signed-in shopper's add_to_cart or purchase of product P at time
    t is credited to that shopper's latest exposure that showed P at a time e with
    e <= t <= e + attribution_window_hours (dbt var, default 24). Responses with no such
    exposure are not in this table. Ties at the same exposure time go to the larger
    exposure_event_id, so rebuilds are identical. Guests are left out: their exposures
    cannot be tied to a shopper across sessions, and the canary routes only signed-in shoppers.
    Returns are not subtracted: revenue is what the purchase line was worth when bought.
-#}
with

responses as (

    select event_id, event_type, user_id, product_id, quantity, revenue, occurred_at
    from {{ ref('fct_events') }}
    where event_type in ('add_to_cart', 'purchase')
      and user_id is not null
      and product_id is not null

),

shown as (

    select * from {{ ref('int_recommendation_items_shown') }}
    where user_id is not null

),

candidates as (

    select
        responses.event_id,
        responses.event_type as response_type,
        responses.user_id,
        responses.product_id,
        responses.quantity,
        responses.revenue,
        responses.occurred_at,
        shown.exposure_event_id,
        shown.occurred_at as exposure_at,
        shown.snapshot_id,
        shown.arm,
        shown.surface,
        shown.rank
    from responses
    inner join shown
        on shown.user_id = responses.user_id
        and shown.product_id = responses.product_id
        and shown.occurred_at <= responses.occurred_at
        and responses.occurred_at
            <= shown.occurred_at + interval '{{ var("attribution_window_hours") }} hours'

)

select
    event_id,
    response_type,
    user_id,
    product_id,
    quantity,
    revenue,
    occurred_at,
    cast(occurred_at as date) as response_date,
    exposure_event_id,
    exposure_at,
    cast(exposure_at as date) as exposure_date,
    snapshot_id,
    arm,
    surface,
    rank
from candidates
qualify row_number() over (
    partition by event_id order by exposure_at desc, exposure_event_id desc
) = 1

{#-
    The exposure log unnested: one row per recommendation_shown event × product shown, with
    its 1-based rank (its position in properties.products). Product ids are normalised as in
    staging (trimmed, upper-cased) so that they join purchases of the same product.
-#}
with

shown as (

    select
        event_id as exposure_event_id,
        user_id,
        session_id,
        {{ recommendation_keys() }},
        -- The envelope guarantees a non-empty list of strings or integers; VARCHAR reads both.
        from_json(properties -> 'products', '["VARCHAR"]') as products,
        occurred_at,
        event_date,
        landed_on
    from {{ ref('stg_shop__events') }}
    where event_type = 'recommendation_shown'

),

items as (

    select
        exposure_event_id,
        user_id,
        session_id,
        snapshot_id,
        arm,
        surface,
        upper(trim(unnest(products))) as product_id,
        generate_subscripts(products, 1) as rank,
        occurred_at,
        event_date,
        landed_on
    from shown

)

select
    exposure_event_id || '|' || rank as item_key,
    *
from items

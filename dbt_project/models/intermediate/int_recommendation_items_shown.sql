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
        {{ json_string_list(json_value('properties', 'products')) }} as products,
        occurred_at,
        event_date,
        landed_on
    from {{ ref('stg_shop__events') }}
    where event_type = 'recommendation_shown'

),

exploded as (

    select
        *,
        {{ explode_with_position('products', 'shown_product_id', 'list_position') }}
    from shown

),

items as (

    select
        exposure_event_id,
        user_id,
        session_id,
        snapshot_id,
        arm,
        surface,
        upper(trim(shown_product_id)) as product_id,
        list_position + 1 as rank,
        occurred_at,
        event_date,
        landed_on
    from exploded

)

select
    exposure_event_id || '|' || rank as item_key,
    *
from items

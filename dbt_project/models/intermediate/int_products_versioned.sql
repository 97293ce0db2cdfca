{#-
    The catalog is event-sourced: a product's state is the fold of its catalog events.
    An upsert may carry only some attributes, so each attribute keeps its last known
    value (`last_value ... ignore nulls`); a delisting keeps the attributes and sets
    is_listed false; a later upsert lists the product again.
-#}
with

catalog_events as (

    select
        product_id,
        event_id,
        event_type,
        occurred_at,
        landed_on,
        price,
        currency,
        nullif(trim({{ json_text('properties', 'title') }}), '') as title,
        nullif(trim({{ json_text('properties', 'description') }}), '') as description,
        nullif(trim({{ json_text('properties', 'category') }}), '') as category_path,
        nullif(trim({{ json_text('properties', 'brand') }}), '') as brand,
        try_cast({{ json_text('properties', 'merchandise') }} as boolean) as merchandise
    from {{ ref('stg_shop__events') }}
    where event_type in ('product_upserted', 'product_delisted')

),

folded as (

    select
        product_id,
        event_id as catalog_event_id,
        event_type,
        row_number() over by_product as version_number,
        occurred_at as valid_from,
        lead(occurred_at) over by_product as valid_to,
        {{ last_value_ignore_nulls('title') }} over running as title,
        {{ last_value_ignore_nulls('description') }} over running as description,
        {{ last_value_ignore_nulls('category_path') }} over running as category_path,
        {{ last_value_ignore_nulls('brand') }} over running as brand,
        {{ last_value_ignore_nulls('price') }} over running as price,
        {{ last_value_ignore_nulls('currency') }} over running as currency,
        {{ last_value_ignore_nulls('merchandise') }} over running as merchandise
    from catalog_events
    window
        by_product as (partition by product_id order by occurred_at, landed_on, event_id),
        running as (
            partition by product_id order by occurred_at, landed_on, event_id
            rows between unbounded preceding and current row
        )

)

select
    product_id || ':' || cast(version_number as {{ dbt.type_string() }}) as product_version_key,
    product_id,
    version_number,
    catalog_event_id,
    title,
    description,
    category_path,
    split_part(category_path, ' > ', 1) as top_category,
    brand,
    price,
    currency,
    coalesce(merchandise, true) as is_merchandise,
    event_type = 'product_upserted' as is_listed,
    valid_from,
    valid_to,
    valid_to is null as is_current
from folded

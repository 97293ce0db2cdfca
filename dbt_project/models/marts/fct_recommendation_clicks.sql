{#- One row per recommendation_clicked event: the product and rank clicked, with its snapshot and arm. -#}
select
    event_id,
    user_id,
    user_id is null as is_guest,
    session_id,
    {{ recommendation_keys() }},
    product_id,
    cast({{ json_text('properties', 'rank') }} as integer) as rank,
    occurred_at,
    event_date,
    landed_on
from {{ ref('stg_shop__events') }}
where event_type = 'recommendation_clicked'

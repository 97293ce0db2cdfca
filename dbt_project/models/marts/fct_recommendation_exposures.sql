{#- One row per recommendation_shown event: which list a shopper was shown, from which snapshot and arm. -#}
select
    event_id,
    user_id,
    user_id is null as is_guest,
    session_id,
    {{ recommendation_keys() }},
    json_array_length({{ json_value('properties', 'products') }}) as products_shown,
    occurred_at,
    event_date,
    landed_on
from {{ ref('stg_shop__events') }}
where event_type = 'recommendation_shown'

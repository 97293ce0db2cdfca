select
    user_id,
    product_id,
    user_id || '|' || product_id as interaction_key,
    count(*) filter (where event_type = 'view') as views,
    count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
    count(*) filter (where event_type = 'purchase') as purchases,
    coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as units_purchased,
    count(*) filter (where event_type = 'return') as returns,
    coalesce(sum(quantity) filter (where event_type = 'return'), 0) as units_returned,
    sum({{ interaction_weight('event_type') }}) as interaction_weight,
    min(occurred_at) as first_interaction_at,
    max(occurred_at) as last_interaction_at
from {{ ref('fct_events') }}
where user_id is not null
  and product_id is not null
  and is_merchandise
group by user_id, product_id

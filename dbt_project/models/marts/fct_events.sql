{#- Incremental over the landing window; a late event is inserted under its own event_date. -#}
-- depends_on: {{ ref('stg_shop__events') }}
{{ config(**replacing_incremental(unique_key='event_id', spark_partition='landed_on')) }}

with

events as (

    select * from {{ ref('int_events_sessionized') }}
    {% if is_incremental() %}
    where event_id in (
        select event_id from {{ ref('stg_shop__events') }} where {{ in_landing_window('landed_on') }}
    )
    {% endif %}

)

select
    event_id,
    event_type,
    event_date,
    occurred_at,
    user_id,
    user_id is null as is_guest,
    session_id,
    product_id,
    search_query,
    quantity,
    price,
    currency,
    -- DECIMAL, not DOUBLE: sums of money are then exact, and identical on every rebuild
    -- (a parallel DOUBLE sum differs in its last bits from run to run).
    case event_type
        when 'purchase' then cast(quantity * price as decimal(18, 4))
        when 'return' then -cast(quantity * price as decimal(18, 4))
    end as revenue,
    {{ json_text('properties', 'country') }} as country,
    -- The producer marks charges and fees; a product without the mark is merchandise.
    coalesce(try_cast({{ json_text('properties', 'merchandise') }} as boolean), true) as is_merchandise,
    landed_on,
    landed_on > event_date as is_late
from events

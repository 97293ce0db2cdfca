-- Every attributed response happened after the exposure it is credited to and within the
-- attribution window (fct_recommendation_attributions). Rows returned are failures.
select *
from {{ ref('fct_recommendation_attributions') }}
where occurred_at < exposure_at
   or occurred_at > exposure_at + interval '{{ var("attribution_window_hours") }} hours'

{#- The snapshot, arm and surface of a recommendation_shown / _clicked event, from its properties
    (validated by the envelope: docs/events.md, "Recommendation events"). -#}
{% macro recommendation_keys() -%}
    trim(properties ->> 'snapshot_id') as snapshot_id,
    properties ->> 'arm' as arm,
    properties ->> 'surface' as surface
{%- endmacro %}

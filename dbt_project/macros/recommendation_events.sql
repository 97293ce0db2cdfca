{#- The snapshot, arm and surface of a recommendation_shown / _clicked event, from its properties
    (validated by the envelope: docs/events.md, "Recommendation events"). -#}
{% macro recommendation_keys() -%}
    trim({{ json_text('properties', 'snapshot_id') }}) as snapshot_id,
    {{ json_text('properties', 'arm') }} as arm,
    {{ json_text('properties', 'surface') }} as surface
{%- endmacro %}

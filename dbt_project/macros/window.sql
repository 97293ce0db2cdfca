{#- The landing-day window of this run, as a SQL predicate: SHOPGUIDE_DBT_MIN_DATE/MAX_DATE when
    set (Dagster's runs), else the vars min_date/max_date (a bare `dbt build`, unit tests). Why
    not --vars: dbt re-parses the whole project when any var changes, i.e. on every run (~10 s);
    a changed env var re-parses only the models that read it. -#}
{% macro in_landing_window(column) -%}
    {{ column }} between cast('{{ env_var("SHOPGUIDE_DBT_MIN_DATE", var("min_date")) }}' as date)
    and cast('{{ env_var("SHOPGUIDE_DBT_MAX_DATE", var("max_date")) }}' as date)
{%- endmacro %}

{#- True when ingestion position a came before b: landing day, then file, then line. -#}
{% macro ingested_before(a, b) -%}
    ({{ a }}.landed_on < {{ b }}.landed_on
     or ({{ a }}.landed_on = {{ b }}.landed_on and {{ a }}.source_file < {{ b }}.source_file)
     or ({{ a }}.landed_on = {{ b }}.landed_on and {{ a }}.source_file = {{ b }}.source_file
         and {{ a }}.source_line < {{ b }}.source_line))
{%- endmacro %}

{#- The interaction weight of an event type, from the interaction_weights var. -#}
{% macro interaction_weight(event_type_column) -%}
    case {{ event_type_column }}
    {%- for event_type, weight in var("interaction_weights").items() %}
        when '{{ event_type }}' then {{ weight }}
    {%- endfor %}
        else 0.0
    end
{%- endmacro %}

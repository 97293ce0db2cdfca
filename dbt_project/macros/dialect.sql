{#-
    What differs between the engines the project runs on (profiles.yml: duckdb, spark), each
    dispatched on the target's adapter. `default__` is DuckDB's SQL, exactly as the models
    had it; `spark__` is Spark SQL's equivalent. A model never names an engine: a new target
    adds its `<adapter>__` versions here (or inherits the default when it already speaks it).
-#}

{#- A JSON property of a JSON text column, as text (`->>`): strings unquoted, other values as JSON. -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text')(column, key)) }}
{%- endmacro %}
{% macro default__json_text(column, key) -%}
    {{ column }} ->> '{{ key }}'
{%- endmacro %}
{% macro spark__json_text(column, key) -%}
    get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}

{#- A JSON property as JSON (`->`), for the JSON functions below. -#}
{% macro json_value(column, key) -%}
    {{ return(adapter.dispatch('json_value')(column, key)) }}
{%- endmacro %}
{% macro default__json_value(column, key) -%}
    {{ column }} -> '{{ key }}'
{%- endmacro %}
{% macro spark__json_value(column, key) -%}
    get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}

{#- A JSON array as a list of strings (numbers read as their text). -#}
{% macro json_string_list(json) -%}
    {{ return(adapter.dispatch('json_string_list')(json)) }}
{%- endmacro %}
{% macro default__json_string_list(json) -%}
    from_json({{ json }}, '["VARCHAR"]')
{%- endmacro %}
{% macro spark__json_string_list(json) -%}
    from_json({{ json }}, 'array<string>')
{%- endmacro %}

{#- Select-list items that unnest a list into one row per element: the element as `value`,
    its 0-based position in the list as `position`. -#}
{% macro explode_with_position(list, value, position) -%}
    {{ return(adapter.dispatch('explode_with_position')(list, value, position)) }}
{%- endmacro %}
{% macro default__explode_with_position(list, value, position) -%}
    unnest({{ list }}) as {{ value }},
    generate_subscripts({{ list }}, 1) - 1 as {{ position }}
{%- endmacro %}
{% macro spark__explode_with_position(list, value, position) -%}
    posexplode({{ list }}) as ({{ position }}, {{ value }})
{%- endmacro %}

{#- The last non-null value of a window frame (the `over` clause follows the macro). -#}
{% macro last_value_ignore_nulls(expression) -%}
    {{ return(adapter.dispatch('last_value_ignore_nulls')(expression)) }}
{%- endmacro %}
{% macro default__last_value_ignore_nulls(expression) -%}
    last_value({{ expression }} ignore nulls)
{%- endmacro %}
{% macro spark__last_value_ignore_nulls(expression) -%}
    last_value({{ expression }}, true)
{%- endmacro %}

{#- The most frequent value, ties broken by the smallest, so that reruns and engines agree. -#}
{% macro mode_smallest(column) -%}
    {{ return(adapter.dispatch('mode_smallest')(column)) }}
{%- endmacro %}
{% macro default__mode_smallest(column) -%}
    mode({{ column }} order by {{ column }})
{%- endmacro %}
{% macro spark__mode_smallest(column) -%}
    mode({{ column }}, true)
{%- endmacro %}

{#- Whole seconds from `start` to `end` (event times carry whole seconds or less precision). -#}
{% macro seconds_between(start, end) -%}
    {{ return(adapter.dispatch('seconds_between')(start, end)) }}
{%- endmacro %}
{% macro default__seconds_between(start, end) -%}
    date_diff('second', {{ start }}, {{ end }})
{%- endmacro %}
{% macro spark__seconds_between(start, end) -%}
    timestampdiff(SECOND, {{ start }}, {{ end }})
{%- endmacro %}

{#-
    The config of an incremental model that replaces what it recomputes.
    DuckDB: delete+insert on `unique_key` (exactly the rows recomputed are replaced).
    Spark, Parquet tables (no MERGE or DELETE without Delta/Iceberg, whose jars would have to
    be downloaded): insert_overwrite of the `spark_partition` partitions the new rows fall in,
    which replaces the same rows when every recomputed key lies wholly inside the partitions
    it touches (landing day, event day); a model without such a partition (fct_sessions:
    actors span days) is rebuilt as a table on every run.
-#}
{% macro replacing_incremental(unique_key, spark_partition=none) -%}
    {{ return(adapter.dispatch('replacing_incremental')(unique_key, spark_partition)) }}
{%- endmacro %}
{% macro default__replacing_incremental(unique_key, spark_partition) -%}
    {{ return({
        'materialized': 'incremental',
        'unique_key': unique_key,
        'incremental_strategy': 'delete+insert',
        'on_schema_change': 'fail',
    }) }}
{%- endmacro %}
{% macro spark__replacing_incremental(unique_key, spark_partition) -%}
    {% if spark_partition is none %}
        {{ return({'materialized': 'table', 'file_format': 'parquet'}) }}
    {% endif %}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'partition_by': [spark_partition],
        'file_format': 'parquet',
        'on_schema_change': 'fail',
    }) }}
{%- endmacro %}

{#-
    The pre-hooks of stg_shop__events, the one model that reads the event log: on Spark,
    declare the log under the source's name first (register_event_log). DuckDB holds it as a
    table already and gets none (a project-wide on-run-start hook would add a node to every
    DuckDB run, too).
-#}
{% macro event_log_pre_hooks() -%}
    {{ return(adapter.dispatch('event_log_pre_hooks')()) }}
{%- endmacro %}
{% macro default__event_log_pre_hooks() -%}
    {{ return([]) }}
{%- endmacro %}
{% macro spark__event_log_pre_hooks() -%}
    {{ return(["{{ register_event_log() }}"]) }}
{%- endmacro %}

{#-
    Spark reads the event log's Parquet copy (one file per landing day, written by
    warehouse/lake.py before each Spark run) as an external table; the `event_log_location`
    var points it elsewhere (s3a://..., abfss://...) on a real cluster.
-#}
{% macro register_event_log() -%}
    {% if execute %}
        {% set location = var('event_log_location', env_var('SHOPGUIDE_HOME', '') ~ '/warehouse/lake/raw_events') %}
        {% do run_query('create database if not exists ' ~ target.schema) %}
        {% do run_query(
            'create table if not exists ' ~ target.schema ~ '.raw_events (
                event_id string, event_type string,
                occurred_at timestamp_ntz, user_id string, session_id string,
                product_id string, quantity int, price double, currency string, query string,
                properties string, _source_file string, _line_number bigint,
                _ingested_at timestamp_ntz, _partition_date date
            ) using parquet location \'' ~ location ~ '\''
        ) %}
        {#- A new session lists the files afresh; this also covers a long-lived Thrift server. -#}
        {% do run_query('refresh table ' ~ target.schema ~ '.raw_events') %}
    {% endif %}
{%- endmacro %}

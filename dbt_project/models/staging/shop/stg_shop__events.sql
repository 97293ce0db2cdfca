{#-
    Incremental over the landing-day window. A duplicate event_id keeps its first
    ingestion (earliest landing day, then file, then line), whichever order the
    partitions are run in: delete+insert on event_id lets an earlier copy replace a
    later one, and the `not exists` keeps a later copy from replacing an earlier one.
    On Spark (Parquet, macros/dialect.sql) the window's landing days are overwritten whole
    instead: the same result when landing days run in order (docs/architecture.md).
-#}
{{
    config(
        pre_hook=event_log_pre_hooks(),
        **replacing_incremental(unique_key='event_id', spark_partition='landed_on')
    )
}}

with

source as (

    select * from {{ source('shop', 'raw_events') }}
    where {{ in_landing_window('_partition_date') }}

),

renamed as (

    select
        ----------  ids
        event_id,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(session_id), '') as session_id,
        -- The real shop typed some codes in lower case: one product, one id.
        upper(nullif(trim(product_id), '')) as product_id,

        ----------  strings
        lower(event_type) as event_type,
        upper(currency) as currency,
        nullif(lower(trim(query)), '') as search_query,
        properties,

        ----------  numerics
        quantity,
        price,

        ----------  timestamps (UTC)
        occurred_at,
        cast(occurred_at as date) as event_date,

        ----------  lineage
        _partition_date as landed_on,
        _source_file as source_file,
        _line_number as source_line

    from source

),

deduplicated as (

    select * from renamed
    qualify row_number() over (
        partition by event_id order by landed_on, source_file, source_line
    ) = 1

)

select * from deduplicated
{% if is_incremental() %}
where not exists (
    select 1 from {{ this }} as existing
    where existing.event_id = deduplicated.event_id
      and {{ ingested_before('existing', 'deduplicated') }}
)
{% endif %}

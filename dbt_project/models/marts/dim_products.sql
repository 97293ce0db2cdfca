with

versions as (

    select * from {{ ref('int_products_versioned') }}

),

first_seen as (

    select product_id, min(valid_from) as first_listed_at, count(*) as versions
    from versions
    group by product_id

)

select
    versions.product_id,
    versions.title,
    versions.description,
    versions.category_path,
    versions.top_category,
    versions.brand,
    versions.price,
    versions.currency,
    versions.is_merchandise,
    versions.is_listed,
    versions.is_listed and versions.is_merchandise as is_recommendable,
    first_seen.first_listed_at,
    versions.valid_from as updated_at,
    first_seen.versions
from versions
inner join first_seen using (product_id)
where versions.is_current

{{ config(meta={'dagster': {'ref': {'name': 'fct_flights'}}}) }}
-- Reconciliation: every flight in the raw zone is in fct_flights once, and fct_flights holds
-- nothing the raw zone does not. Returns one row per discrepancy. Checked over the partition
-- window being built (every day once over a backfill; the whole zone without a window).

with raw_ids as (
    select flight_id from {{ ref('stg_nycflights__flights') }} where {{ in_partition_window('delivery_date') }}
),

curated_ids as (
    select flight_id from {{ ref('fct_flights') }} where {{ in_partition_window('flight_date') }}
),

raw_count as (
    select count(*) as n from {{ source('nycflights', 'flights') }} where {{ in_partition_window('delivery_date') }}
),
curated_count as (
    select count(*) as n from {{ ref('fct_flights') }} where {{ in_partition_window('flight_date') }}
)

-- (EXCEPT, not DuckDB's ANTI JOIN: the same text runs on Spark; duplicates show in the counts.)
select 'in raw, not curated' as problem, flight_id
from (select flight_id from raw_ids except select flight_id from curated_ids) as missing
union all
select 'in curated, not raw' as problem, flight_id
from (select flight_id from curated_ids except select flight_id from raw_ids) as extra
union all
select 'row counts differ: raw ' || cast(raw_count.n as {{ dbt.type_string() }})
       || ', curated ' || cast(curated_count.n as {{ dbt.type_string() }}), null
from raw_count, curated_count
where raw_count.n != curated_count.n

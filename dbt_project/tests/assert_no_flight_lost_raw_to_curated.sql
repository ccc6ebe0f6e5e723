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

select 'in raw, not curated' as problem, flight_id from raw_ids anti join curated_ids using (flight_id)
union all
select 'in curated, not raw' as problem, flight_id from curated_ids anti join raw_ids using (flight_id)
union all
select 'row counts differ: raw ' || raw_count.n || ', curated ' || curated_count.n, null
from raw_count, curated_count
where raw_count.n != curated_count.n

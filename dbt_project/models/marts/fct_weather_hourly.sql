{{
    config(
        on_schema_change='append_new_columns',
        tags=['daily'],
        **daily_table_config('delivery_date'),
    )
}}
-- The hourly weather observations as delivered, one row per origin and local hour (staging's
-- standardized readings), kept as a table: features read it, and the analyst catalog publishes
-- it (staging's views read the raw zone and are not published).

select
    origin,
    observed_hour_local,
    observed_at_utc,
    temp_f,
    dewpoint_f,
    humidity_pct,
    wind_dir_deg,
    wind_speed_mph,
    wind_gust_mph,
    precip_in,
    pressure_mb,
    visibility_mi,
    delivery_date,
    batch_id,
    ingested_at
from {{ ref('stg_nycflights__weather') }}
where {{ in_partition_window('delivery_date') }}

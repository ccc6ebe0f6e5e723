select
    carrier,
    name as carrier_name,
    _batch_id as batch_id,
    _ingested_at as ingested_at
from {{ source('nycflights', 'airlines') }}

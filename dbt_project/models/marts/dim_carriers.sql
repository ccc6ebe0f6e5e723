select
    carrier,
    carrier_name
from {{ ref('stg_nycflights__airlines') }}

"""Plain, typed building blocks of the lakehouse: settings, source contracts, parquet I/O,
pseudonymization, the warehouse lock and the analyst catalog. No Dagster imports here except
in `lakehouse_resource`, so every piece is unit-testable on its own."""

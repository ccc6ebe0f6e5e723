"""Dagster glue: thin asset definitions over the plain functions in ``resources``."""

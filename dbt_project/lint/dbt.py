"""dbt's cross-database macros the models call (``dbt.dateadd``, ``dbt.datediff``,
``dbt.type_string``) for sqlfluff's jinja templater, rendered as dbt-duckdb renders them, so
linting sees the SQL that runs (``.sqlfluff``; dbt itself is not loaded to lint)."""


def dateadd(datepart: str, interval: str, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}::timestamp, {second_date}::timestamp)"


def type_string() -> str:
    return "varchar"

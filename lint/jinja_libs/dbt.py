"""dbt's cross-database macros as dbt-redshift renders them, for SQLFluff's jinja templater.

The linter checks the SQL Redshift would receive; these return the same text as the
`redshift__` (or default) implementations of the macros the models call.
"""


def dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"dateadd({datepart}, {interval}, {from_date_or_timestamp})"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"datediff({datepart}, {first_date}, {second_date})"


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def current_timestamp() -> str:
    return "getdate()"

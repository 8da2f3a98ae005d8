"""dbt: run in-process (dbt_runner.py), on what new data reaches (scope.py)."""

from .dbt_runner import DbtError, DbtReport, compile_inline, run_dbt

__all__ = ["DbtError", "DbtReport", "compile_inline", "run_dbt"]

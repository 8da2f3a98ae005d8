"""The dbt SQL is lint-clean under the project's SQLFluff configuration (redshift dialect).

SQLFluff runs in its own process: its jinja templater imports lint/jinja_libs/dbt.py as a module
named `dbt`, which must not shadow the real dbt package in the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys

from loaders.config import PROJECT_DIR


def _lint(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "--format", "json", "--nofail", *args],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600,
    )
    return json.loads(result.stdout)


def test_models_tests_and_analyses_are_lint_clean():
    records = _lint("models", "tests/dbt", "analyses")
    problems = [f"{r['filepath']}:{v['start_line_no']}: {v['code']} {v['description']}"
                for r in records for v in r["violations"]]
    assert len(records) > 25  # every model was linted
    assert problems == []


def test_the_lint_catches_a_violation(tmp_path):
    bad = PROJECT_DIR / "models" / "_lint_probe.sql"
    bad.write_text("SELECT A,B from X\n")
    try:
        records = _lint(str(bad.relative_to(PROJECT_DIR)))
    finally:
        bad.unlink()
    assert records and records[0]["violations"]

"""The dbt SQL is lint-clean under the project's SQLFluff configuration (redshift dialect)."""

from __future__ import annotations

import os

from sqlfluff.core import FluffConfig, Linter

from loaders.config import PROJECT_DIR


def _linter() -> Linter:
    return Linter(config=FluffConfig.from_path(str(PROJECT_DIR)))


def test_models_tests_and_analyses_are_lint_clean():
    cwd = os.getcwd()
    os.chdir(PROJECT_DIR)  # the config's relative paths (macros, jinja libs) are project-relative
    try:
        result = _linter().lint_paths(("models", "tests/dbt", "analyses"))
    finally:
        os.chdir(cwd)
    records = result.as_records()
    problems = [
        f"{record['filepath']}:{v['start_line_no']}: {v['code']} {v['description']}"
        for record in records
        for v in record["violations"]
    ]
    assert len(records) > 20  # every model was linted
    assert problems == []


def test_the_lint_catches_a_violation():
    cwd = os.getcwd()
    os.chdir(PROJECT_DIR)
    try:
        result = _linter().lint_string("SELECT A,B from X\n")
    finally:
        os.chdir(cwd)
    assert result.violations

"""The code is lint-clean: the dbt SQL under SQLFluff (redshift dialect), the Python under ruff
(lint and format) and mypy, all configured in the project (.sqlfluff, pyproject.toml).

Each tool runs in its own process; SQLFluff must: (its jinja templater imports lint/jinja_libs/dbt.py as a
module named `dbt`, which must not shadow the real dbt package in the test process).
"""

from __future__ import annotations

import json
import subprocess
import sys

from loaders.config import PROJECT_DIR


def _lint(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "--format", "json", "--nofail", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(result.stdout)


def test_models_tests_and_analyses_are_lint_clean():
    records = _lint("models", "tests/dbt", "analyses")
    problems = [
        f"{r['filepath']}:{v['start_line_no']}: {v['code']} {v['description']}"
        for r in records
        for v in r["violations"]
    ]
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


PYTHON_CODE = ["loaders", "olist_demo", "tests", "bench"]


def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600)


def test_python_code_passes_ruff_lint_and_format():
    lint = _tool("ruff", "check", "--output-format", "concise", *PYTHON_CODE)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = _tool("ruff", "format", "--check", *PYTHON_CODE)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_python_code_type_checks():
    result = _tool("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_type_ignore_says_why():
    """A `# type: ignore[...]` needs a reason after it on the same line."""
    import re

    bare = []
    for folder in PYTHON_CODE:
        for path in (PROJECT_DIR / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                match = re.search(r"#\s*type:\s*ignore(\[[^\]]*\])?(.*)$", line)
                if match and not match.group(2).strip(" #"):
                    bare.append(f"{path.relative_to(PROJECT_DIR)}:{number}")
    assert bare == []

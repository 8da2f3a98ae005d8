"""The command line: help that answers questions, and one clear line per user error."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from loaders.cli import main
from loaders.config import ConfigError, Settings


@pytest.mark.parametrize("command", [[], ["demo"], ["generate"], ["source", "load"], ["simulate"],
                                     ["extract"], ["load"], ["build"], ["run"], ["settings"], ["docs"],
                                     ["funnel"], ["funnel", "generate"], ["funnel", "land"],
                                     ["funnel", "convert"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and len(result.output.splitlines()) > 4


def test_extract_help_names_what_it_writes_and_its_settings():
    out = CliRunner().invoke(main, ["extract", "--help"]).output
    for fragment in ("_manifest.json", "DWH_LOOKBACK_SECONDS", "historical", "current"):
        assert fragment in out


def test_user_error_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "--data-dir", str(tmp_path),
         "--source-url", "mysql://shop:hunter2-secret@127.0.0.1:1/olist", "extract"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the source database mysql://shop:***@127.0.0.1:1/olist")
    assert "Traceback" not in result.stderr and "hunter2-secret" not in result.stderr + result.stdout


def test_settings_hide_secrets():
    result = CliRunner().invoke(main, ["settings"], env={
        "DWH_SOURCE_URL": "mysql://u:pa55word@db:3306/shop", "DWH_REDSHIFT_PASSWORD": "rs-secret"})
    assert result.exit_code == 0
    assert "pa55word" not in result.output and "rs-secret" not in result.output
    assert "DWH_REDSHIFT_PASSWORD" in result.output and "***" in result.output


def test_bad_setting_names_the_variable():
    with pytest.raises(ConfigError, match="DWH_PART_ROWS='many'"):
        Settings.from_env({"DWH_PART_ROWS": "many"})
    with pytest.raises(ConfigError, match="DWH_WAREHOUSE='snowflake'"):
        Settings.from_env({"DWH_WAREHOUSE": "snowflake"})

"""The command line: help that answers questions, and one clear line per user error."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from click.testing import CliRunner

from loaders.cli import main
from loaders.config import ConfigError, Settings


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["generate"],
        ["source", "load"],
        ["simulate"],
        ["extract"],
        ["load"],
        ["build"],
        ["run"],
        ["settings"],
        ["batches"],
        ["docs"],
        ["funnel"],
        ["funnel", "generate"],
        ["funnel", "land"],
        ["funnel", "convert"],
    ],
)
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and len(result.output.splitlines()) > 4


def test_extract_help_names_what_it_writes_and_its_settings():
    out = CliRunner().invoke(main, ["extract", "--help"]).output
    for fragment in ("_manifest.json", "DWH_LOOKBACK_SECONDS", "historical", "current"):
        assert fragment in out


def test_user_error_is_one_line_without_traceback(tmp_path):
    password = f"pw-{secrets.token_hex(6)}"  # made at run time: no credential literal in the repository
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loaders.cli",
            "--data-dir",
            str(tmp_path),
            "--source-url",
            f"mysql://shop:{password}@127.0.0.1:1/olist",
            "extract",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the source database mysql://shop:***@127.0.0.1:1/olist")
    assert "Traceback" not in result.stderr and password not in result.stderr + result.stdout


def test_settings_hide_secrets():
    source_pw, redshift_pw = secrets.token_hex(6), secrets.token_hex(6)
    result = CliRunner().invoke(
        main,
        ["settings"],
        env={"DWH_SOURCE_URL": f"mysql://u:{source_pw}@db:3306/shop", "DWH_REDSHIFT_PASSWORD": redshift_pw},
    )
    assert result.exit_code == 0
    assert source_pw not in result.output and redshift_pw not in result.output
    assert "DWH_REDSHIFT_PASSWORD" in result.output and "***" in result.output


def test_bad_setting_names_the_variable():
    with pytest.raises(ConfigError, match="DWH_PART_ROWS='many'"):
        Settings.from_env({"DWH_PART_ROWS": "many"})
    with pytest.raises(ConfigError, match="DWH_WAREHOUSE='snowflake'"):
        Settings.from_env({"DWH_WAREHOUSE": "snowflake"})

"""No credential literal anywhere in the repository: AWS keys, private keys, passwords in URLs,
profiles or code. Every file git tracks (or would track) is scanned.

Test fixtures that need a password make one at run time (secrets.token_hex), so nothing here
needs an exception list beyond a few documented placeholders.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from loaders.config import PROJECT_DIR

# Words that stand for a password in documentation and examples, never a real one.
PLACEHOLDERS = {"", "***", "...", "password", "pw", "pass", "secret", "<password>", "changeme"}

PATTERNS: list[tuple[str, re.Pattern]] = [
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    (
        "AWS secret access key",
        re.compile(
            r"(?i)aws_?secret_?access_?key['\"]?\s*[:=]\s*['\"]?(?P<value>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
    ("password in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"`]+:(?P<value>[^@\s/'\"`{}]+)@[A-Za-z0-9.-]")),
    (
        "password in a profile or config",
        re.compile(
            r"(?im)^\s*['\"]?(?:password|passwd|db_password|secret_key)['\"]?\s*:\s*(?P<value>[^\s#{][^\s#]*)\s*(?:#.*)?$"
        ),
    ),
    (
        "password in code",
        re.compile(r"(?i)\b(?:password|passwd|pwd|secret)\s*=\s*(?P<q>['\"])(?P<value>[^'\"]+)(?P=q)"),
    ),
    (
        "password in a dict literal",
        re.compile(r"(?i)['\"](?:password|passwd|pwd|secret)['\"]\s*:\s*(?P<q>['\"])(?P<value>[^'\"]*)(?P=q)"),
    ),
]


def findings(text: str) -> list[tuple[str, str]]:
    """(what, the matched text) for every credential-looking literal in `text`."""
    found = []
    for what, pattern in PATTERNS:
        for match in pattern.finditer(text):
            value = match.groupdict().get("value")
            if value is not None and value.strip("'\"").lower() in PLACEHOLDERS:
                continue
            found.append((what, match.group(0).strip()))
    return found


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def test_the_repository_holds_no_credential_literal():
    files = repository_files()
    assert "loaders/aws/trigger.py" in files and "infra/template.yaml" in files
    problems = []
    for name in files:
        path = PROJECT_DIR / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for what, excerpt in findings(data.decode("utf-8", "replace")):
            problems.append(f"{name}: {what}: {excerpt[:80]}")
    assert not problems, "credential literals:\n" + "\n".join(problems)


# Planted examples, assembled at run time so that this file itself stays clean.
KEY_ID = "AKIA" + "Q3EXAMPLE7ABCDEF"
PLANTED_KEY = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    "planted",
    [
        f"aws_access_key_id = {KEY_ID}",
        f"aws_secret_access_key = {PLANTED_KEY}",
        f'"AWS_SECRET_ACCESS_KEY": "{PLANTED_KEY}"',
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "DWH_SOURCE_URL=mysql://shop:" + "hunter2x@db.example.com:3306/olist",
        "postgresql://dbt:" + "Tr0ub4dor@warehouse.internal/analytics",
        "      password: " + "Sup3rS3cret",
        'password = "' + 'Sup3rS3cret"',
        '{"username": "x", "password": "' + 'Sup3rS3cret"}',
    ],
)
def test_the_scan_finds_planted_credentials(planted):
    assert findings(planted), planted


@pytest.mark.parametrize(
    "clean",
    [
        "mysql://user:password@host:3306/database",
        "mysql://user:***@host/db",
        "password: \"{{ env_var('DWH_PG_PASSWORD', '') }}\"",
        'pymysql.connect(host=h, user="root", password="")',
        'f"mysql://{user}:{password}@{host}"',
        "AWS_SECRET_ACCESS_KEY=testing",
        "GenerateStringKey: password",
    ],
)
def test_the_scan_lets_placeholders_and_references_pass(clean):
    assert findings(clean) == [], clean

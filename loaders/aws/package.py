"""`dwh package`: the artifacts the CloudFormation template (infra/template.yaml) references.

Writes into one folder, to be copied as is to `s3://<ArtifactBucket>/<ArtifactPrefix>/`:

    lambda/trigger-<hash>.zip        the trigger function (loaders/aws/trigger.py, loaders/layout.py; boto3 only)
    glue/loaders-<hash>.zip          the loaders package, for the Glue jobs' --extra-py-files
    glue/dbt_project-<hash>.zip      the dbt project (models, macros, seeds, tests, profiles.yml)
    glue/jobs/<job>.py               the Glue job scripts: `main("<job>")`, nothing else
    glue/requirements.txt            the pinned third-party packages the Glue jobs install
    parameters.txt                   Key=Value lines for `aws cloudformation deploy --parameter-overrides`

Zips are reproducible (sorted entries, fixed timestamps), and their names carry a hash of their
content, so a new version gets a new key and CloudFormation updates the function and the jobs,
while an unchanged one deploys as a no-op.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PROJECT_DIR

JOBS = ("extract", "load", "funnel")
# What the Glue jobs install (pip, at job start) besides the loaders zip: the runtime
# dependencies the AWS path imports, pinned to the versions requirements.lock tests.
GLUE_PACKAGES = (
    "dbt-core",
    "dbt-redshift",
    "pyarrow",
    "connectorx",
    "pymysql",
    "mysql-replication",  # DWH_CAPTURE=binlog (loaders/extract/binlog.py)
    "s3fs",
    "click",
    "pyyaml",
    "python-json-logger",  # DWH_LOG_FORMAT=json (loaders/console.py)
)
DBT_PROJECT_PATHS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "analyses", "tests/dbt")
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
# The trigger Lambda's code: the function, the store layout it matches keys against and the
# client settings (all import only the standard library and boto3, which the Lambda runtime has).
TRIGGER_MODULES = (
    "loaders/__init__.py",
    "loaders/layout.py",
    "loaders/aws/__init__.py",
    "loaders/aws/clients.py",
    "loaders/aws/trigger.py",
)


class PackageError(RuntimeError):
    """The artifacts cannot be built; the message names the file at fault."""


@dataclass
class Artifacts:
    out: Path
    files: dict[str, str] = field(default_factory=dict)  # role -> path relative to out
    parameters: dict[str, str] = field(default_factory=dict)


def _zip(entries: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _python_files(root: Path, package: str) -> list[tuple[str, Path]]:
    base = root / package
    return [(p.relative_to(root).as_posix(), p) for p in base.rglob("*.py") if "__pycache__" not in p.parts]


def _project_files(root: Path) -> list[tuple[str, Path]]:
    entries = []
    for rel in DBT_PROJECT_PATHS:
        path = root / rel
        if path.is_file():
            entries.append((rel, path))
        elif path.is_dir():
            entries += [
                (p.relative_to(root).as_posix(), p)
                for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            ]
        else:
            raise PackageError(f"{path}: missing; the dbt project needs it")
    return entries


def pinned_requirements(lock: Path, packages: tuple[str, ...] = GLUE_PACKAGES) -> list[str]:
    """`name==version` for each package, as requirements.lock pins it."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[3]
    missing = [p for p in packages if p not in pins]
    if missing:
        raise PackageError(f"{lock}: no pinned version for {', '.join(missing)}")
    return [f"{p}=={pins[p]}" for p in packages]


def _write(out: Path, rel: str, data: bytes) -> None:
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _hashed(name: str, data: bytes) -> str:
    stem, ext = name.rsplit(".", 1)
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.{ext}"


JOB_SCRIPT = '''"""Glue job script for the `{job}` job (made by `dwh package`): see loaders/aws/glue_jobs.py."""
from loaders.aws.glue_jobs import main

main("{job}")
'''


def build(out: Path, root: Path = PROJECT_DIR) -> Artifacts:
    """Write every artifact into `out` (emptied first of older artifacts)."""
    out = Path(out)
    for old in ("lambda", "glue"):
        for path in sorted((out / old).rglob("*"), reverse=True) if (out / old).exists() else []:
            path.unlink() if path.is_file() else path.rmdir()
    artifacts = Artifacts(out)

    trigger = _zip([(n, p) for n, p in _python_files(root, "loaders") if n in TRIGGER_MODULES])
    loaders = _zip(_python_files(root, "loaders"))
    project = _zip(_project_files(root))
    for role, folder, name, data in (
        ("trigger", "lambda", "trigger.zip", trigger),
        ("loaders", "glue", "loaders.zip", loaders),
        ("dbt_project", "glue", "dbt_project.zip", project),
    ):
        rel = f"{folder}/{_hashed(name, data)}"
        _write(out, rel, data)
        artifacts.files[role] = rel
    for job in JOBS:
        rel = f"glue/jobs/{job}.py"
        _write(out, rel, JOB_SCRIPT.format(job=job).encode())
        artifacts.files[f"job_{job}"] = rel
    requirements = pinned_requirements(root / "requirements.lock")
    _write(out, "glue/requirements.txt", ("\n".join(requirements) + "\n").encode())
    artifacts.files["requirements"] = "glue/requirements.txt"

    artifacts.parameters = {
        "TriggerCodeKey": artifacts.files["trigger"],
        "LoadersZipKey": artifacts.files["loaders"],
        "DbtProjectKey": artifacts.files["dbt_project"],
        "GluePythonModules": ",".join(requirements),
    }
    lines = [f"{k}={v}" for k, v in artifacts.parameters.items()]
    _write(out, "parameters.txt", ("\n".join(lines) + "\n").encode())
    return artifacts

"""Settings: one frozen object built from the environment, passed down explicitly.

Every setting has a default that runs the embedded pipeline (SQLite -> local folder ->
DuckDB) with no credentials. The AWS mode is the same code with other values. Secrets are
only ever read from the environment (or, on AWS, Secrets Manager by the entry points) and are
never printed: `Settings.describe()` redacts them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

WarehouseName = Literal["duckdb", "postgres", "redshift"]
"""The warehouses (and dbt targets); loaders/warehouses/ has a class for each."""
Compression = Literal["snappy", "zstd", "gzip", "none"]
"""Parquet codecs a batch's parts may use."""
BuildScope = Literal["changed", "all"]
"""What `dwh build` builds by default: what new data reaches, or the whole project."""
Capture = Literal["cursor", "binlog"]
"""How incremental extracts find changes: `cursor` polls each table's cursor column with a
lookback (any source); `binlog` reads MySQL/MariaDB row events from a stored binary-log position
(loaders/extract/binlog.py, docs/architecture.md contract 11)."""
RedshiftServerless = Literal["auto", "true", "false"]
"""Redshift Serverless or a provisioned cluster (they keep COPY errors in different system views)."""
LogFormat = Literal["text", "json"]
"""How commands and jobs print: `text` for people, `json` (one object a line) for CloudWatch Logs
Insights (loaders/console.py)."""
SchemaChanges = Literal["evolve", "freeze"]
"""What an extract does when the source table differs from its declaration (loaders/schema/):
`evolve` takes new columns and widened types into the raw tables and stops a table only for a
dropped, renamed, narrowed or changed column; `freeze` stops a table for any difference."""
PROJECT_DIR = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a value that cannot work; the message names the setting."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _secret(default: str = "") -> Any:
    """A settings field that is never shown (`describe()` prints *** for it)."""
    return field(default=default, repr=False, metadata={"secret": True})


@dataclass(frozen=True)
class Settings:
    """What the pipeline reads and writes. Environment variable: DWH_<FIELD NAME IN CAPS>."""

    project_dir: Path = PROJECT_DIR
    data_dir: Path = PROJECT_DIR / "data"
    # Source database: sqlite:///path/to/file.sqlite or mysql://user:password@host:3306/db
    source_url: str = ""
    # Object store: a local folder, or s3://bucket/prefix
    store_url: str = ""
    s3_endpoint_url: str = ""  # for S3-compatible servers (moto, MinIO); empty on AWS
    aws_region: str = "us-east-1"
    # Warehouse (also the dbt target of profiles.yml)
    warehouse: WarehouseName = "duckdb"
    duckdb_path: str = ""
    raw_schema: str = "raw"
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = _secret()
    pg_database: str = "postgres"
    redshift_host: str = ""
    redshift_port: int = 5439
    redshift_user: str = ""
    redshift_password: str = _secret()
    redshift_database: str = "dev"
    redshift_iam_role: str = ""  # ARN of the role COPY and Spectrum assume
    # Where COPY failures are described: "auto" (Serverless when the host is a
    # *.redshift-serverless.amazonaws.com workgroup endpoint), "true" (sys_load_error_detail) or
    # "false" (provisioned cluster: stl_load_errors)
    redshift_serverless: RedshiftServerless = "auto"
    # Slices of the cluster COPY spreads a batch over (0: parts sized by DWH_PART_ROWS alone).
    # A historical batch then writes a multiple of this many parts of at most copy_part_bytes
    # (loaders/extract/parts.py, plan_parts)
    redshift_slices: int = 0
    copy_part_bytes: int = 256 * 1024 * 1024  # compressed bytes a historical part aims to stay under
    # Extraction
    capture: Capture = "cursor"
    lookback_seconds: int = 900
    part_rows: int = 500_000
    batch_rows: int = 16_384  # Arrow batch and Parquet row group size while streaming
    page_rows: int = 32_768  # a historical extract reads each key range in pages of up to this many rows
    extract_streams: int = 2  # key ranges read in parallel, each over its own connection
    parquet_compression: Compression = "snappy"
    # Tables extracted at once are as many as fit this budget (loaders/extract/parallel.py)
    max_memory_mb: int = 1024
    # Overlapping runs (loaders/runlock.py): wait this long for the warehouse, then skip
    lock_wait_seconds: int = 60
    # A later run removes unpublished batch folders and funnel temporary files older than this
    # (loaders/litter.py); a batch being written or resumed is never touched
    litter_age_hours: float = 6.0
    # Source schema drift: "evolve" (new columns and widenings reach raw) or "freeze" (stop)
    schema_changes: SchemaChanges = "evolve"
    # `dwh run` verifies and repairs every table this often (`24h`, `30m`, `3600s`, `0` = never),
    # and after a historical extract (loaders/pipeline.py, verify_due)
    verify_every: str = "24h"
    # Funnel lake
    funnel_block_bytes: int = 16 * 1024 * 1024  # a converter block: whole lines, about this size
    funnel_max_reject_ratio: float = 0.01  # a file with more rejected rows fails, converting nothing
    glue_database: str = ""  # register partitions in this Glue database (empty: no Glue)
    glue_table: str = "funnel_events"
    glue_endpoint_url: str = ""  # for a Glue-compatible endpoint (moto in tests); empty on AWS
    # dbt: "changed" builds only what is downstream of data loaded since the last build
    # (loaders/build/scope.py); "all" builds the whole project every time
    build_scope: BuildScope = "changed"
    # At least this often `dwh build` builds the whole project and runs every data test over
    # whole tables; between, tests see only the rows of the run (macros/tests/changed_rows.sql)
    full_tests_hours: float = 24.0
    # Output: "json" prints every report line, unit outcome and log record as one JSON object
    log_format: LogFormat = "text"
    # CloudWatch namespace of the load job's freshness metric (loaders/aws/metrics.py); empty: none
    metrics_namespace: str = ""
    # Demo sizes
    scale: float = 0.05
    seed: int = 42

    def __post_init__(self) -> None:
        data_dir = Path(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        object.__setattr__(self, "project_dir", Path(self.project_dir))
        if not self.source_url:
            object.__setattr__(self, "source_url", f"sqlite:///{data_dir / 'olist.sqlite'}")
        if not self.store_url:
            object.__setattr__(self, "store_url", str(data_dir / "store"))
        if not self.duckdb_path:
            object.__setattr__(self, "duckdb_path", str(data_dir / "warehouse.duckdb"))
        for name, kind in (
            ("warehouse", WarehouseName),
            ("build_scope", BuildScope),
            ("parquet_compression", Compression),
            ("log_format", LogFormat),
            ("schema_changes", SchemaChanges),
            ("capture", Capture),
            ("redshift_serverless", RedshiftServerless),
        ):
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise ConfigError(f"DWH_{name.upper()}={getattr(self, name)!r}: use {' or '.join(allowed)}")
        for name in (
            "lookback_seconds",
            "part_rows",
            "batch_rows",
            "page_rows",
            "extract_streams",
            "max_memory_mb",
            "lock_wait_seconds",
            "redshift_slices",
            "copy_part_bytes",
        ):
            if getattr(self, name) < (0 if name in ("lookback_seconds", "lock_wait_seconds", "redshift_slices") else 1):
                raise ConfigError(f"DWH_{name.upper()}={getattr(self, name)} is out of range")
        if self.full_tests_hours < 0:
            raise ConfigError(f"DWH_FULL_TESTS_HOURS={self.full_tests_hours} is out of range")
        if self.litter_age_hours < 1:
            raise ConfigError(f"DWH_LITTER_AGE_HOURS={self.litter_age_hours} is below 1: an extract may still write it")
        self.verify_every_seconds  # noqa: B018 - raises ConfigError on a bad value
        if not 0 <= self.funnel_max_reject_ratio <= 1:
            raise ConfigError(f"DWH_FUNNEL_MAX_REJECT_RATIO={self.funnel_max_reject_ratio} must be between 0 and 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from DWH_* variables, then explicit overrides (CLI options) on top."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"DWH_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]  # values were coerced per field type above

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]  # callers pass field values

    @property
    def verify_every_seconds(self) -> int:
        """DWH_VERIFY_EVERY in seconds (0: never). Accepts `<n>` (seconds), `<n>s`, `<n>m`, `<n>h`, `<n>d`."""
        text = str(self.verify_every).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
        if not number.isdigit():
            raise ConfigError(f"DWH_VERIFY_EVERY={self.verify_every!r}: use e.g. 24h, 30m, 3600 or 0 (never)")
        return int(number) * unit

    @property
    def is_redshift_serverless(self) -> bool:
        """Redshift Serverless (a workgroup) rather than a provisioned cluster: DWH_REDSHIFT_SERVERLESS,
        or with "auto" the host name (workgroup endpoints end in .redshift-serverless.amazonaws.com)."""
        if self.redshift_serverless != "auto":
            return self.redshift_serverless == "true"
        return self.redshift_host.lower().rstrip(".").endswith(".redshift-serverless.amazonaws.com")

    def describe(self) -> dict[str, str]:
        """Settings as strings for display, secrets hidden."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                value = "***" if value else ""
            elif f.name == "source_url":
                value = redact_url(value)
            out[f.name] = str(value)
        return out


def _coerce(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"DWH_{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw

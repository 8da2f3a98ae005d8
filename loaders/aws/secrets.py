"""Credentials from AWS Secrets Manager, turned into Settings values, never printed.

A secret holds a JSON object in the format RDS and Redshift use for their own secrets:
`{"username": ..., "password": ..., "host": ..., "port": ..., "dbname": ...}` (`engine` and
other keys are ignored). Errors name the secret and the missing keys, never a value.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from ..config import ConfigError, Settings

REQUIRED = ("username", "password", "host")


class SecretError(ConfigError):
    """A secret cannot be read or lacks a key; the message names the secret, never its value."""


def read_secret(secret_id: str, settings: Settings, client=None) -> dict[str, str]:
    from botocore.exceptions import BotoCoreError, ClientError

    from .clients import client as aws_client

    client = client or aws_client("secretsmanager", region_name=settings.aws_region)
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SecretError(f"secret {secret_id!r}: {code} (does it exist, and may this role read it?)") from None
    except BotoCoreError as exc:
        raise SecretError(f"secret {secret_id!r}: {type(exc).__name__}") from None
    try:
        value = json.loads(response.get("SecretString") or "")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SecretError(f"secret {secret_id!r} is not a JSON object with {', '.join(REQUIRED)}")
    # An empty password is possible (a local test server); a missing one is not.
    missing = [k for k in REQUIRED if k not in value or (k != "password" and value[k] in (None, ""))]
    if missing:
        raise SecretError(f"secret {secret_id!r} lacks {', '.join(missing)}")
    return {k: str(v) for k, v in value.items() if v is not None}


def source_url(secret: dict[str, str]) -> str:
    """mysql://user:password@host:port/dbname from an RDS-style secret."""
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    credentials = f"{user}:{password}" if secret["password"] else user
    return f"mysql://{credentials}@{secret['host']}:{secret.get('port') or 3306}/{secret.get('dbname', '')}"


def apply_source_secret(settings: Settings, secret: dict[str, str]) -> Settings:
    return settings.with_(source_url=source_url(secret))


def apply_warehouse_secret(settings: Settings, secret: dict[str, str]) -> Settings:
    """The warehouse connection of the settings' target (redshift or postgres) from a secret."""
    if settings.warehouse == "redshift":
        return settings.with_(
            redshift_host=secret["host"],
            redshift_port=int(secret.get("port") or 5439),
            redshift_user=secret["username"],
            redshift_password=secret["password"],
            redshift_database=secret.get("dbname") or settings.redshift_database,
        )
    if settings.warehouse == "postgres":
        return settings.with_(
            pg_host=secret["host"],
            pg_port=int(secret.get("port") or 5432),
            pg_user=secret["username"],
            pg_password=secret["password"],
            pg_database=secret.get("dbname") or settings.pg_database,
        )
    raise ConfigError(f"--warehouse_secret_id is for redshift or postgres, not DWH_WAREHOUSE={settings.warehouse}")

"""The object store: a local folder or s3://bucket/prefix, through one fsspec code path.

Everything the pipeline writes to the store goes through here: batch parts (streamed, hashed
while written), manifests and state files (written whole and atomically: a local file is
renamed into place, an S3 object appears only when its upload completes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import fsspec

from .config import Settings

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The object store cannot be used; the message names the location."""


class Sink(Protocol):
    """What HashingWriter writes through: a binary file object (local, or s3fs's upload)."""

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class HashingWriter:
    """A write-only file object that counts and hashes the bytes passing through it."""

    def __init__(self, raw: Sink):
        self._raw = raw
        self._sha = hashlib.sha256()
        self.bytes = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self.bytes += len(view)
        self._raw.write(view)
        return len(view)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        self._raw.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            self.closed = True

    def abort(self) -> None:
        """Drop what was written (no object appears)."""
        discard = getattr(self._raw, "discard", None)
        if discard:
            discard()
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class ObjectInfo:
    path: str
    size: int


class ObjectStore:
    """Paths inside the store are relative, with '/' separators (`orders/current/...`)."""

    def __init__(self, url: str, settings: Settings | None = None):
        self.url = url.rstrip("/")
        self.is_s3 = self.url.startswith("s3://")
        if self.is_s3:
            client_kwargs: dict[str, Any] = {}
            if settings is not None:
                client_kwargs["region_name"] = settings.aws_region
                if settings.s3_endpoint_url:
                    client_kwargs["endpoint_url"] = settings.s3_endpoint_url
            from .aws.clients import RETRIES  # botocore's standard retry mode, like every AWS call

            self.fs = fsspec.filesystem(
                "s3", client_kwargs=client_kwargs, config_kwargs={"retries": dict(RETRIES)}, use_listings_cache=False
            )
            self.root = self.url[len("s3://") :]
            self._check_bucket()
        elif "://" in self.url and not self.url.startswith("file://"):
            raise StoreError(f"DWH_STORE_URL={self.url!r}: use a local folder or s3://bucket/prefix")
        else:
            self.fs = fsspec.filesystem("file")
            self.root = str(Path(self.url.removeprefix("file://")).resolve())
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store folder {self.root}: {exc.strerror}") from None

    def _check_bucket(self) -> None:
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.call_s3("head_bucket", Bucket=bucket)
        except FileNotFoundError:
            raise StoreError(f"bucket {bucket!r} does not exist (DWH_STORE_URL={self.url})") from None
        except PermissionError:
            raise StoreError(f"no access to bucket {bucket!r} (DWH_STORE_URL={self.url})") from None
        except OSError as exc:
            raise StoreError(f"cannot reach bucket {bucket!r} (DWH_STORE_URL={self.url}): {exc}") from None

    # -- naming -----------------------------------------------------------------------------
    def full(self, path: str) -> str:
        """The filesystem path of an object (bucket/key on S3)."""
        return f"{self.root}/{path}" if path else self.root

    def uri(self, path: str) -> str:
        """The address other engines use: s3://bucket/key or an absolute local path."""
        return f"s3://{self.full(path)}" if self.is_s3 else self.full(path)

    def relative(self, full: str) -> str:
        full = full.removeprefix("s3://")
        return full[len(self.root) + 1 :] if full.startswith(self.root + "/") else full

    # -- writing ----------------------------------------------------------------------------
    def open_part(self, path: str) -> HashingWriter:
        """Open an object for streaming writes; close() publishes it, abort() drops it."""
        if self.is_s3:
            return HashingWriter(self.fs.open(self.full(path), "wb"))
        full = self.full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return HashingWriter(_LocalAtomicFile(full))

    def write_bytes(self, path: str, data: bytes) -> None:
        writer = self.open_part(path)
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        writer.close()

    def write_json(self, path: str, doc: Any) -> None:
        self.write_bytes(path, json.dumps(doc, indent=2, sort_keys=False, default=str).encode())

    # -- reading ----------------------------------------------------------------------------
    def read_bytes(self, path: str) -> bytes:
        try:
            with self.fs.open(self.full(path), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise StoreError(f"missing object: {self.uri(path)}") from None

    def read_json(self, path: str) -> Any:
        data = self.read_bytes(path)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StoreError(f"{self.uri(path)} is not valid JSON: {exc}") from None

    def exists(self, path: str) -> bool:
        return self.fs.exists(self.full(path))

    def info(self, path: str) -> ObjectInfo:
        try:
            size = self.fs.info(self.full(path))["size"]
        except FileNotFoundError:
            raise StoreError(f"missing object: {self.uri(path)}") from None
        return ObjectInfo(path, int(size))

    def sha256(self, path: str) -> str:
        sha = hashlib.sha256()
        with self.fs.open(self.full(path), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()

    def glob(self, pattern: str) -> list[str]:
        self.fs.invalidate_cache()
        return sorted(self.relative(p) for p in self.fs.glob(self.full(pattern)))

    def move(self, source: str, target: str) -> None:
        """Move one object (a rename locally; copy then delete on S3)."""
        if self.is_s3:
            self.fs.mv(self.full(source), self.full(target))
        else:
            os.makedirs(os.path.dirname(self.full(target)), exist_ok=True)
            os.replace(self.full(source), self.full(target))

    def delete(self, path: str) -> None:
        if self.fs.exists(self.full(path)):
            self.fs.rm(self.full(path), recursive=True)


class _LocalAtomicFile:
    """A local file written under a temporary name and renamed into place on close."""

    def __init__(self, path: str):
        self.path = path
        self.tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        self._handle = open(self.tmp, "wb")  # noqa: SIM115 - closed by close() or discard()

    def write(self, data: bytes) -> int:
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self._handle.close()
        os.unlink(self.tmp)

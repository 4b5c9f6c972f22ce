"""Document storage behind one small interface, with two backends and a spool.

Keys are opaque (document ids and fixed names: ``documents/2026/11/<document-id>/original.pdf``): a key
or metadata value must never carry patient data, because encryption at rest does not cover them. The
only metadata Frontdesk writes is the content's SHA-256.

A write is *confirmed* only when the store reports the expected SHA-256 (local: the file is re-read and
hashed; S3: the checksum S3 computed on receipt, the ``sha256`` metadata, the size and the encryption
header are checked); callers move or delete an original only after that.

* :class:`LocalStorage` is a folder (the default).
* :class:`S3Storage` is an S3 bucket (or any S3-compatible store via ``endpoint_url``), always written
  with server-side encryption (SSE-S3, or SSE-KMS with the configured key); a stored object that comes
  back unencrypted is refused.
* :class:`SpoolingStorage` wraps either: transient failures are retried with backoff, and when the store
  still cannot be reached the object waits in a local spool folder, to be sent by :meth:`flush` on the
  next run. After one such failure it stops trying for a cool-down period, so a batch does not wait out
  every retry for every file while the store is down.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from frontdesk.exceptions import ConfigError, StorageError, TransientStorageError
from frontdesk.models import StoredObject

log = logging.getLogger("frontdesk.storage")

CHUNK = 1024 * 1024
MiB = 1024 * 1024
T = TypeVar("T")

# Errors of network file systems (NFS, SMB) that come and go; a local disk error is not retried.
_TRANSIENT_ERRNOS = {errno.ETIMEDOUT, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENOTCONN, errno.ESTALE,
                     errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ENETUNREACH,
                     errno.ENETDOWN}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Storage(Protocol):
    """What every backend offers. ``put_*`` returns only after the write is confirmed."""

    def put_file(self, src: Path, key: str, *, content_type: str = "application/octet-stream") -> StoredObject: ...

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "application/octet-stream") -> StoredObject: ...

    def head(self, key: str) -> StoredObject | None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> Iterator[StoredObject]: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def uri(self, key: str) -> str: ...


class SpooledObject(StoredObject):
    """A write accepted into the local spool because the store could not be reached. It serialises as
    a plain :class:`StoredObject` (the JSON contract is unchanged); code can test ``isinstance``."""


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return key


@dataclass(frozen=True)
class RetryPolicy:
    """Our own retries around a whole operation (botocore retries single requests underneath)."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delays(self) -> Iterator[float]:
        for i in range(self.attempts - 1):
            d = min(self.max_delay, self.base_delay * (2**i))
            yield d * (0.5 + random.random() / 2)  # jitter: processes that failed together retry apart


def with_retries(fn: Callable[[], T], policy: RetryPolicy, what: str,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn``; retry on :class:`TransientStorageError` with exponential backoff, then re-raise."""
    delays = policy.delays()
    while True:
        try:
            return fn()
        except TransientStorageError as exc:
            delay = next(delays, None)
            if delay is None:
                raise
            log.info("%s: %s; retrying in %.1f s", what, exc, delay)
            sleep(delay)


def _os_error(exc: OSError, action: str, what: str) -> StorageError:
    reason = exc.strerror or exc.__class__.__name__
    cls = TransientStorageError if exc.errno in _TRANSIENT_ERRNOS else StorageError
    return cls(f"cannot {action} {what}: {reason}")


class LocalStorage:
    """A folder on disk (the default). Writes are atomic: temp file, fsync, rename, then verified."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        expected = sha256_bytes(data)
        dest = self._path(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(dest.parent)
        except OSError as exc:
            raise _os_error(exc, "write", key) from None
        return self._confirm(key, expected)

    def put_file(self, src: Path, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        try:
            data = Path(src).read_bytes()
        except OSError as exc:
            # The source path may be named after a patient: say which key it was for, not the path.
            raise _os_error(exc, "read the source file for", key) from None
        return self.put_bytes(data, key, content_type=content_type)

    def _confirm(self, key: str, expected: str) -> StoredObject:
        obj = self.head(key)
        if obj is None or obj.sha256 != expected:
            raise StorageError(f"stored copy of {key} does not match what was written")
        return obj

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            if not path.is_file():
                return None
            return StoredObject(key=key, uri=path.as_uri(), sha256=sha256_file(path), size=path.stat().st_size)
        except OSError as exc:
            raise _os_error(exc, "read", key) from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise _os_error(exc, "read", key) from None

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".part-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        for key in self.keys(prefix):
            obj = self.head(key)
            if obj is not None:
                yield obj

    def sweep_partials(self, older_than: float = 3600.0) -> int:
        return _sweep_partials(self.root, older_than)


def _sweep_partials(root: Path, older_than: float) -> int:
    """Remove temp files a killed writer left (never a finished object: those are renamed into place).
    Only old ones: a fresh one may belong to a writer that is still running."""
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in root.rglob(".part-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable: a power cut must not leave a record pointing at nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- S3 -------------------------------------------------------------------------------------------------

_TRANSIENT_S3_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
                       "ThrottlingException", "RequestTimeTooSkewed", "500", "502", "503", "504"}


def _client_error(exc: BaseException) -> Any:
    """The botocore ClientError behind ``exc`` (boto3 wraps upload errors in S3UploadFailedError)."""
    from botocore.exceptions import ClientError

    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        if isinstance(cur, ClientError):
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def _s3_error(exc: BaseException, action: str, key: str) -> StorageError:
    """Map a boto error to ours, with a message that names the key and the reason only. boto's own
    messages can include the local file name, which may be named after a patient."""
    from botocore.exceptions import (
        BotoCoreError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError(f"cannot {action} {key}: no S3 credentials (set AWS_ACCESS_KEY_ID or a profile)")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TransientStorageError(f"cannot {action} {key}: S3 endpoint not reachable ({exc.__class__.__name__})")
    ce = _client_error(exc)
    if ce is not None:
        code = str(ce.response.get("Error", {}).get("Code", "unknown"))
        status = int(ce.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _TRANSIENT_S3_CODES or status >= 500:
            return TransientStorageError(f"cannot {action} {key}: S3 is unavailable ({code})")
        return StorageError(f"cannot {action} {key}: S3 refused ({code})")
    if isinstance(exc, BotoCoreError):
        return TransientStorageError(f"cannot {action} {key}: {exc.__class__.__name__}")
    return StorageError(f"cannot {action} {key}: {exc.__class__.__name__}")


class S3Storage:
    """An S3 bucket. Every put carries server-side encryption, the ``sha256`` metadata and a SHA-256
    checksum S3 verifies on receipt; files above the multipart threshold go up in parts."""

    def __init__(self, bucket: str, *, prefix: str = "", region: str = "us-east-1", endpoint_url: str | None = None,
                 sse: str = "AES256", kms_key_id: str | None = None, max_attempts: int = 5,
                 multipart_threshold_mb: int = 8, retry: RetryPolicy | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0, client: Any = None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not bucket:
            raise ConfigError("storage.s3.bucket is empty: name the bucket to file documents in")
        if sse not in ("AES256", "aws:kms"):
            raise ConfigError("storage.s3.sse must be AES256 or aws:kms")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.sse = sse
        self.kms_key_id = kms_key_id if sse == "aws:kms" else None
        self.retry = retry or RetryPolicy()
        self.client = client or boto3.client(
            "s3", region_name=region, endpoint_url=endpoint_url,
            config=Config(retries={"total_max_attempts": max(1, max_attempts), "mode": "standard"},
                          connect_timeout=connect_timeout, read_timeout=read_timeout,
                          s3={"addressing_style": "path"} if endpoint_url else None),
        )
        threshold = max(5, multipart_threshold_mb) * MiB  # S3's smallest part is 5 MiB
        self.transfer = TransferConfig(multipart_threshold=threshold, multipart_chunksize=threshold,
                                       max_concurrency=4)

    @classmethod
    def from_settings(cls, s3: Any, **kwargs: Any) -> S3Storage:
        return cls(s3.bucket, prefix=s3.prefix, region=s3.region, endpoint_url=s3.endpoint_url, sse=s3.sse,
                   kms_key_id=s3.kms_key_id, max_attempts=s3.max_attempts,
                   multipart_threshold_mb=s3.multipart_threshold_mb, **kwargs)

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _logical(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def _extra_args(self, sha: str, content_type: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": {"sha256": sha},
                                 "ServerSideEncryption": self.sse, "ChecksumAlgorithm": "SHA256"}
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        return extra

    def _call(self, fn: Callable[[], T], action: str, key: str) -> T:
        def once() -> T:
            try:
                return fn()
            except Exception as exc:
                raise _s3_error(exc, action, key) from None
        return with_retries(once, self.retry, f"S3 {action} {key}")

    def put_file(self, src: Path, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        try:
            sha, size = sha256_file(Path(src)), Path(src).stat().st_size
        except OSError as exc:
            raise _os_error(exc, "read the source file for", key) from None
        full = self._full(key)
        self._call(lambda: self.client.upload_file(str(src), self.bucket, full,
                                                   ExtraArgs=self._extra_args(sha, content_type),
                                                   Config=self.transfer), "write", key)
        return self._confirm(key, sha, size)

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        sha, full = sha256_bytes(data), self._full(key)
        self._call(lambda: self.client.upload_fileobj(io.BytesIO(data), self.bucket, full,
                                                      ExtraArgs=self._extra_args(sha, content_type),
                                                      Config=self.transfer), "write", key)
        return self._confirm(key, sha, len(data))

    def _head_raw(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        full = self._full(key)

        def once() -> dict[str, Any] | None:
            try:
                return dict(self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED"))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise _s3_error(exc, "read", key) from None
            except Exception as exc:
                raise _s3_error(exc, "read", key) from None
        return with_retries(once, self.retry, f"S3 head {key}")

    @staticmethod
    def sha_of(head: dict[str, Any]) -> str:
        """S3's own full-object SHA-256 when it has one (computed on receipt); else our metadata."""
        checksum = head.get("ChecksumSHA256")
        # A multipart object's checksum is a checksum of its parts' checksums ("<b64>-N", or a
        # ChecksumType of COMPOSITE; its ETag ends in "-N"): S3 verified each part, the whole is ours.
        composite = ("-" in str(checksum) or head.get("ChecksumType") == "COMPOSITE"
                     or "-" in str(head.get("ETag", "")))
        if checksum and not composite:
            return base64.b64decode(checksum).hex()
        return str(head.get("Metadata", {}).get("sha256", ""))

    def _confirm(self, key: str, expected: str, size: int) -> StoredObject:
        head = self._head_raw(key)
        if head is None:
            raise TransientStorageError(f"stored copy of {key} is not visible yet")
        if head.get("ContentLength") != size or self.sha_of(head) != expected \
                or head.get("Metadata", {}).get("sha256") != expected:
            raise StorageError(f"stored copy of {key} does not match what was written")
        if head.get("ServerSideEncryption") != self.sse or (
                self.kms_key_id and not str(head.get("SSEKMSKeyId", "")).endswith(self.kms_key_id)):
            raise StorageError(f"stored copy of {key} is not encrypted as configured ({self.sse})")
        return StoredObject(key=key, uri=self.uri(key), sha256=expected, size=size)

    def head(self, key: str) -> StoredObject | None:
        head = self._head_raw(key)
        if head is None:
            return None
        return StoredObject(key=key, uri=self.uri(key), sha256=self.sha_of(head),
                            size=int(head.get("ContentLength", 0)))

    def head_metadata(self, key: str) -> dict[str, Any] | None:
        """The raw HEAD response (encryption, metadata): for ``storage verify`` and the tests."""
        return self._head_raw(key)

    def get_bytes(self, key: str) -> bytes:
        full = self._full(key)
        return self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read(),
                          "read", key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        # A listing prefix may end in "/" (a folder), which is not a valid key: join it by hand.
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        pages = self._call(lambda: list(self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full_prefix)), "list", prefix or "/")
        for page in pages:
            for item in page.get("Contents", []):
                yield self._logical(item["Key"])

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        for key in self.keys(prefix):
            obj = self.head(key)
            if obj is not None:
                yield obj


# --- spool ----------------------------------------------------------------------------------------------

@dataclass
class SpoolEntry:
    key: str
    sha256: str
    size: int
    content_type: str
    data: Path
    meta: Path


@dataclass
class FlushReport:
    sent: list[StoredObject]
    waiting: int
    error: str | None = None


class SpoolingStorage:
    """A backend plus a local spool for the times it cannot be reached.

    A spooled write is durable (fsync'd, renamed into place, data before its metadata file) and returns a
    :class:`SpooledObject`; the caller records it as spooled. :meth:`flush` sends spooled objects to the
    backend, confirms each, reports it to ``on_sent`` (the records database marks it stored) and only then
    deletes the spooled copy.
    """

    def __init__(self, backend: Storage, spool_dir: Path, *, cooldown: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.spool_dir = Path(spool_dir) / "objects"
        self.cooldown = cooldown
        self.clock = clock
        self._down_until = 0.0

    # The spool's file names are a hash of the key: flat, fixed-length, and as opaque as the key.
    def _paths(self, key: str) -> tuple[Path, Path]:
        name = hashlib.sha256(check_key(key).encode()).hexdigest()[:40]
        return self.spool_dir / f"{name}.data", self.spool_dir / f"{name}.json"

    def uri(self, key: str) -> str:
        return self.backend.uri(key)

    @property
    def available(self) -> bool:
        return self.clock() >= self._down_until

    def _mark_down(self, exc: TransientStorageError) -> None:
        self._down_until = self.clock() + self.cooldown
        log.warning("document storage unreachable (%s); spooling for %.0f s", exc, self.cooldown)

    def _put(self, key: str, data: bytes | None, src: Path | None, content_type: str) -> StoredObject:
        if self.available:
            try:
                if data is not None:
                    obj = self.backend.put_bytes(data, key, content_type=content_type)
                else:
                    assert src is not None
                    obj = self.backend.put_file(src, key, content_type=content_type)
                self._drop(key)  # a newer copy is in the store: an older spooled one must not replace it
                return obj
            except TransientStorageError as exc:
                self._mark_down(exc)
        if data is None:
            assert src is not None
            try:
                data = src.read_bytes()
            except OSError as exc:
                raise _os_error(exc, "read the source file for", key) from None
        return self._spool(key, data, content_type)

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        return self._put(key, data, None, content_type)

    def put_file(self, src: Path, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        return self._put(key, None, Path(src), content_type)

    def _spool(self, key: str, data: bytes, content_type: str) -> SpooledObject:
        data_path, meta_path = self._paths(key)
        sha = sha256_bytes(data)
        meta = {"key": key, "sha256": sha, "size": len(data), "content_type": content_type}
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(data_path, data)
            _atomic_write(meta_path, json.dumps(meta).encode())
            _fsync_dir(self.spool_dir)
        except OSError as exc:
            raise _os_error(exc, "spool", key) from None
        if sha256_file(data_path) != sha:
            raise StorageError(f"spooled copy of {key} does not match what was written")
        log.info("spooled %s until storage is reachable", key)
        return SpooledObject(key=key, uri=data_path.as_uri(), sha256=sha, size=len(data))

    def _drop(self, key: str) -> None:
        data_path, meta_path = self._paths(key)
        if meta_path.exists() or data_path.exists():
            meta_path.unlink(missing_ok=True)
            data_path.unlink(missing_ok=True)

    def spooled(self) -> list[SpoolEntry]:
        """Complete spool entries (a data file whose metadata was written), oldest first."""
        if not self.spool_dir.is_dir():
            return []
        entries = []
        for meta_path in sorted(self.spool_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            data_path = meta_path.with_suffix(".data")
            if data_path.is_file():
                entries.append(SpoolEntry(meta["key"], meta["sha256"], int(meta["size"]),
                                          meta.get("content_type", "application/octet-stream"), data_path, meta_path))
        return entries

    def spooled_entry(self, key: str) -> SpoolEntry | None:
        data_path, meta_path = self._paths(key)
        if not meta_path.is_file() or not data_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        return SpoolEntry(key, meta["sha256"], int(meta["size"]), meta.get("content_type", ""), data_path, meta_path)

    def flush(self, on_sent: Callable[[StoredObject], None] | None = None) -> FlushReport:
        """Send every spooled object to the backend. Stops at the first transient failure (the store is
        still down); a spooled copy is deleted only after the backend confirmed it and ``on_sent`` ran."""
        entries = self.spooled()
        sent: list[StoredObject] = []
        for i, entry in enumerate(entries):
            if sha256_file(entry.data) != entry.sha256:
                return FlushReport(sent, len(entries) - i, f"spooled copy of {entry.key} is damaged")
            try:
                obj = self.backend.put_file(entry.data, entry.key, content_type=entry.content_type)
            except TransientStorageError as exc:
                self._mark_down(exc)
                return FlushReport(sent, len(entries) - i, str(exc))
            if obj.sha256 != entry.sha256:
                return FlushReport(sent, len(entries) - i, f"stored copy of {entry.key} does not match")
            if on_sent is not None:
                on_sent(obj)
            entry.meta.unlink(missing_ok=True)
            entry.data.unlink(missing_ok=True)
            sent.append(obj)
        if sent:
            self._down_until = 0.0
            log.info("sent %d spooled objects to storage", len(sent))
        return FlushReport(sent, 0)

    def head(self, key: str) -> StoredObject | None:
        return self.backend.head(key)

    def sweep_partials(self, older_than: float = 3600.0) -> int:
        """Temp files of killed writers, in the spool and (local backend) in storage."""
        removed = _sweep_partials(self.spool_dir, older_than)
        if isinstance(self.backend, LocalStorage):
            removed += self.backend.sweep_partials(older_than)
        return removed

    def get_bytes(self, key: str) -> bytes:
        entry = self.spooled_entry(key)
        if entry is not None:  # the spooled copy is the newest one
            return entry.data.read_bytes()
        return self.backend.get_bytes(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        return self.backend.keys(prefix)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        return self.backend.list(prefix)


def _atomic_write(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_storage(settings: object, **s3_options: Any) -> SpoolingStorage:
    """The configured backend, behind the spool. ``s3_options`` (retry policy, timeouts, a client)
    are for tests and tools."""
    from frontdesk.settings import Settings

    assert isinstance(settings, Settings)
    st = settings.storage
    backend: Storage
    if st.backend == "local":
        backend = LocalStorage(st.root)
    elif st.backend == "s3":
        backend = S3Storage.from_settings(st.s3, **s3_options)
    else:  # pragma: no cover - the settings model allows only the two
        raise ConfigError(f"storage backend {st.backend!r} is not available")
    return SpoolingStorage(backend, st.spool)

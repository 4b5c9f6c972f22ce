"""Document storage behind one small interface.

Keys are opaque (document ids and fixed names: ``documents/2026/11/<document-id>/original.pdf``): a key
or metadata value must never carry patient data, because encryption at rest does not cover them.
A write is *confirmed* only when the stored bytes hash to the expected SHA-256; callers move or delete an
original only after that.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from frontdesk.exceptions import StorageError
from frontdesk.models import StoredObject

CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class Storage(Protocol):
    """What every backend offers. ``put_*`` returns only after the write is confirmed."""

    def put_file(self, src: Path, key: str, *, content_type: str = "application/octet-stream") -> StoredObject: ...

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "application/octet-stream") -> StoredObject: ...

    def head(self, key: str) -> StoredObject | None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> Iterator[StoredObject]: ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """A folder on disk (the default). Writes are atomic: temp file, fsync, rename, then verified."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def put_bytes(self, data: bytes, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        expected = hashlib.sha256(data).hexdigest()
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
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc.strerror or exc.__class__.__name__}") from None
        return self._confirm(key, expected)

    def put_file(self, src: Path, key: str, *, content_type: str = "application/octet-stream") -> StoredObject:
        try:
            data = Path(src).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {src}: {exc.strerror or exc.__class__.__name__}") from None
        return self.put_bytes(data, key, content_type=content_type)

    def _confirm(self, key: str, expected: str) -> StoredObject:
        obj = self.head(key)
        if obj is None or obj.sha256 != expected:
            raise StorageError(f"stored copy of {key} does not match what was written")
        return obj

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return StoredObject(key=key, uri=path.as_uri(), sha256=sha256_file(path), size=path.stat().st_size)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror or exc.__class__.__name__}") from None

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".part-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    obj = self.head(key)
                    if obj is not None:
                        yield obj


def open_storage(settings: object) -> Storage:
    """The configured backend."""
    from frontdesk.settings import Settings

    assert isinstance(settings, Settings)
    if settings.storage.backend == "local":
        return LocalStorage(settings.storage.root)
    raise StorageError(f"storage backend {settings.storage.backend!r} is not available")

"""Plain data that extractors return: what was read, where, and how sure we are. No validation here."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RawField:
    """What was read for one field before normalisation (checkbox raw: the mark or export value)."""

    raw: str | None
    confidence: float = 1.0
    page: int | None = None


@dataclass
class RawFlag:
    code: str
    severity: str
    message: str
    field: str | None = None


@dataclass
class RawDocument:
    """An extractor's answer for one input document."""

    document_type: str = "unknown"
    form: str | None = None
    method: str = "text"
    pages: int = 0
    fields: dict[str, RawField] = field(default_factory=dict)
    flags: list[RawFlag] = field(default_factory=list)
    present: set[str] | None = None  # keys the matched form has a box for (None: all)
    source_pages: list[int] | None = None  # 1-based pages of the input this document was read from


class ReadTimeout(Exception):
    """Reading took longer than allowed (a looping or hostile file)."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt pure-Python parsing that loops forever. Works in the main thread only (SIGALRM);
    elsewhere it is a no-op and callers rely on process-level limits."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise ReadTimeout(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def sniff(path: Path) -> str:
    """The file's real kind from its first bytes, not its name: staff rename files."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        return "empty"
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return "other"

"""Plain data that extractors return: what was read, where, and how sure we are. No validation here."""

from __future__ import annotations

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

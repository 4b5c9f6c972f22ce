"""Readers for incoming documents. Each returns a :class:`RawDocument` (plain data, nothing validated).

Public surface: :func:`read_document`, :class:`RawDocument`, :class:`RawField`, :class:`TemplateRegistry`,
:class:`UnreadableDocument`.
"""

from __future__ import annotations

from pathlib import Path

from extractors.base import RawDocument, RawField, RawFlag, ReadTimeout, sniff, time_limit
from extractors.pdf import UnreadablePDF, read_pdf
from extractors.templates import FormTemplate, TemplateRegistry

__all__ = [
    "FormTemplate", "RawDocument", "RawField", "RawFlag", "TemplateRegistry", "UnreadableDocument",
    "read_document", "sniff",
]


class UnreadableDocument(Exception):
    """The input cannot be read at all. ``reason`` is one short line without document content."""

    def __init__(self, reason: str, *, encrypted: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.encrypted = encrypted


def read_document(path: Path, registry: TemplateRegistry, *, match_threshold: float = 0.55,
                  timeout: float | None = 60.0) -> RawDocument:
    """Read any supported input, bounded in time."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableDocument("file not found")
    kind = sniff(path)
    if kind == "empty":
        raise UnreadableDocument("empty file")
    if kind == "other":
        raise UnreadableDocument("not a PDF, TIFF, JPEG or PNG file")
    try:
        with time_limit(timeout):
            if kind == "pdf":
                return read_pdf(path, registry, match_threshold=match_threshold)
            return RawDocument(
                document_type="unknown", method="ocr", pages=0,
                flags=[RawFlag("form.unrecognised", "error", f"{kind.upper()} images are not read yet")],
            )
    except UnreadablePDF as exc:
        raise UnreadableDocument(exc.reason, encrypted=exc.encrypted) from None
    except ReadTimeout as exc:
        raise UnreadableDocument(f"reading {exc}; the file may be damaged") from None
    except MemoryError:
        raise UnreadableDocument("too large to read") from None

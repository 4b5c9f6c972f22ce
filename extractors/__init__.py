"""Readers for incoming documents. Each returns :class:`RawDocument` objects (plain data, nothing validated).

Public surface: :func:`read_document`, :func:`read_documents`, :class:`RawDocument`, :class:`RawField`,
:class:`TemplateRegistry`, :class:`ScanOptions`, :class:`UnreadableDocument`.
"""

from __future__ import annotations

from pathlib import Path

from extractors.base import RawDocument, RawField, RawFlag, sniff
from extractors.images import Limits, UnreadableImage
from extractors.ocr import OcrError
from extractors.pdf import UnreadablePDF, open_pdf, read_pdf
from extractors.scan import ScanOptions, read_scan
from extractors.templates import FormTemplate, TemplateRegistry

__all__ = [
    "FormTemplate", "Limits", "RawDocument", "RawField", "RawFlag", "ScanOptions", "TemplateRegistry",
    "UnreadableDocument", "read_document", "read_documents", "sniff",
]


class UnreadableDocument(Exception):
    """The input cannot be read at all. ``reason`` is one short line without document content."""

    def __init__(self, reason: str, *, encrypted: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.encrypted = encrypted


def read_documents(path: Path, registry: TemplateRegistry, *, match_threshold: float = 0.55,
                   timeout: float | None = 60.0, scan: ScanOptions | None = None) -> list[RawDocument]:
    """Every document in one input file, bounded in time: one for a digital PDF, one or more for a scan
    (a stack of forms), in page order."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableDocument("file not found")
    kind = sniff(path)
    if kind == "empty":
        raise UnreadableDocument("empty file")
    if kind == "other":
        raise UnreadableDocument("not a PDF, TIFF, JPEG or PNG file")
    scan = scan or ScanOptions()
    if scan.deadline is None and timeout:
        scan = ScanOptions(**{**scan.__dict__, "deadline": timeout})
    try:
        if kind == "pdf":
            # No time limit in here: the reading process that calls this is killed at its wall-clock
            # limit (frontdesk.reading_process), which stops C code too, in any thread.
            doc = read_pdf(path, registry, match_threshold=match_threshold)
            if doc is not None:
                return [doc]
            reader = open_pdf(path)
            return read_scan(path, kind, registry, scan, pdf_reader=reader)
        return read_scan(path, kind, registry, scan)
    except UnreadablePDF as exc:
        raise UnreadableDocument(exc.reason, encrypted=exc.encrypted) from None
    except UnreadableImage as exc:
        raise UnreadableDocument(exc.reason) from None
    except OcrError as exc:
        raise UnreadableDocument(f"OCR failed: {exc}") from None
    except MemoryError:
        raise UnreadableDocument("too large to read") from None


def read_document(path: Path, registry: TemplateRegistry, *, match_threshold: float = 0.55,
                  timeout: float | None = 60.0, scan: ScanOptions | None = None) -> RawDocument:
    """The first (for most inputs the only) document in the file."""
    return read_documents(path, registry, match_threshold=match_threshold, timeout=timeout, scan=scan)[0]

"""Opening a PDF safely, apart from reading it: the classifier and the form reader both open PDFs, and
neither should import the other for it."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError


class UnreadablePDF(Exception):
    """The PDF cannot be opened; ``reason`` is safe to show (no content from the file)."""

    def __init__(self, reason: str, *, encrypted: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.encrypted = encrypted


def open_pdf(path: Path) -> PdfReader:
    """Open with pypdf, accepting an empty user password (common on 'protected' forms), else refuse."""
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (NotImplementedError, PdfReadError) as exc:
                raise UnreadablePDF(f"encrypted PDF that cannot be opened ({exc.__class__.__name__})", encrypted=True) from None
            if not ok:
                raise UnreadablePDF("password-protected PDF; please send an unprotected copy", encrypted=True)
        n = len(reader.pages)
    except UnreadablePDF:
        raise
    except FileNotDecryptedError:
        raise UnreadablePDF("password-protected PDF; please send an unprotected copy", encrypted=True) from None
    except RecursionError:
        raise UnreadablePDF("damaged PDF (its object structure loops)") from None
    except Exception as exc:  # pypdf raises many types on damaged files
        raise UnreadablePDF(f"damaged or truncated PDF ({exc.__class__.__name__})") from None
    if n == 0:
        raise UnreadablePDF("PDF has no pages")
    return reader

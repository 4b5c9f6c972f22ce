"""Cut the pages of one document out of a scanned stack.

A stack (ten patients' forms scanned in one go) is filed whole once, and each form in it is filed as its
own document whose original holds only its own pages. That way exporting one patient's records, or
opening their document, never shows another patient's form. The bytes are deterministic for the same
input and pages, so a retry after a crash writes exactly what the interrupted attempt planned.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from frontdesk.exceptions import InputFileError


def pages_of(path: Path, numbers: Sequence[int]) -> tuple[bytes, str]:
    """The 1-based pages ``numbers`` of a PDF or (multi-page) TIFF, as a file of the same kind; returns
    the bytes and the file suffix. Image formats that hold one page come back whole."""
    suffix = path.suffix.lower()
    if not numbers:
        raise ValueError("no pages to cut")
    try:
        if suffix == ".pdf":
            return _pdf_pages(path, numbers), ".pdf"
        if suffix in (".tif", ".tiff"):
            return _tiff_pages(path, numbers), ".tif"
        if list(numbers) != [1]:
            raise InputFileError(path, f"a {suffix} image has one page; pages {list(numbers)} do not exist")
        return path.read_bytes(), suffix
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - the file was read once already; say what failed, not its content
        raise InputFileError(path, f"its pages could not be cut out for filing ({exc.__class__.__name__})") from None


def _pdf_pages(path: Path, numbers: Sequence[int]) -> bytes:
    import pypdf

    reader = pypdf.PdfReader(path)
    writer = pypdf.PdfWriter()
    for n in numbers:
        writer.add_page(reader.pages[n - 1])
    # No producer line with a version or a time in it: the same pages give the same bytes.
    writer.add_metadata({"/Producer": "Frontdesk"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _tiff_pages(path: Path, numbers: Sequence[int]) -> bytes:
    from PIL import Image

    frames = []
    with Image.open(path) as img:
        for n in numbers:
            img.seek(n - 1)
            frame = img.copy()
            frame.info["dpi"] = img.info.get("dpi", (200, 200))
            frames.append(frame)
    first, *rest = frames
    # Fax pages stay CCITT G4; grey or colour pages are kept lossless.
    compression = "group4" if first.mode == "1" else "tiff_deflate"
    if compression == "group4":
        rest = [f if f.mode == "1" else f.convert("1") for f in rest]
    out = io.BytesIO()
    first.save(out, "TIFF", compression=compression, dpi=first.info["dpi"], save_all=True, append_images=rest)
    return out.getvalue()

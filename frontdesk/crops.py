"""Pictures of where a field was read, cut at the moment a page asks for them from the stored original.

Why at render time: a crop is patient data. Storing crops would make a second copy of every uncertain
field, with its own retention, encryption and audit questions; cutting them from the original on
request keeps the original the only copy. Aligned pages are kept in memory for a few requests (the
review page asks for several crops of one page), never on disk.

How: a scanned form page is registered to its template with the same feature alignment the reader used
(:mod:`extractors.register`), so a widget's rectangle on the blank form is the same rectangle on the
warped scan, whatever the skew or shift of the paper. A digitally filled PDF is drawn and cut at the
widget directly. A document with no template (a card, a letter) gets a picture of the whole page.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from extractors import register
from extractors.images import WORK_DPI, Limits, iter_image_pages, iter_pdf_pages
from extractors.templates import FormTemplate, TemplateRegistry, Widget
from frontdesk.exceptions import FrontdeskError

PT = WORK_DPI / 72  # pixels per point at the working resolution
MARGIN_PT = 10.0  # context around the box, so the person sees the label and the writing beside it
PAGE_WIDTH_PX = 900  # a whole-page picture is scaled to this width
_CACHE_PAGES = 8


class CropError(FrontdeskError):
    """No picture can be cut (the original is gone, or the page cannot be aligned); the message names
    the document by id."""


@dataclass(frozen=True)
class _Aligned:
    gray: np.ndarray  # page in the template's frame at WORK_DPI (or the page as drawn when no template)
    aligned: bool


_cache: OrderedDict[tuple[str, int], _Aligned] = OrderedDict()
_lock = threading.Lock()


def _png(gray: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _widget(tpl: FormTemplate, key: str) -> Widget | None:
    return next((w for w in tpl.widgets() if w.key == key), None)


def _pages(data: bytes, suffix: str) -> list[np.ndarray]:
    """Every page of an original as grayscale at WORK_DPI (scans from their images, else drawn)."""
    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="frontdesk-crop-") as tmp:
        path = Path(tmp) / f"original{suffix}"
        path.write_bytes(data)
        path.chmod(0o600)
        if suffix == ".pdf":
            from pypdf import PdfReader

            out: list[np.ndarray] = []
            reader = PdfReader(str(path))
            for p in iter_pdf_pages(path, reader, limits):
                out.append(p.gray if p.gray.size else np.empty((0, 0), np.uint8))
            if any(g.size == 0 for g in out):  # digital pages: draw them
                doc = pdfium.PdfDocument(str(path))
                try:
                    for i, g in enumerate(out):
                        if g.size == 0:
                            img = doc[i].render(scale=WORK_DPI / 72, grayscale=True).to_pil().convert("L")
                            out[i] = np.asarray(img)
                finally:
                    doc.close()
            return out
        return [p.gray for p in iter_image_pages(path, limits)]


def _aligned_page(doc_id: str, data: bytes, suffix: str, tpl: FormTemplate | None, tpage: int,
                  digital: bool) -> _Aligned:
    with _lock:
        hit = _cache.get((doc_id, tpage))
        if hit is not None:
            _cache.move_to_end((doc_id, tpage))
            return hit
    pages = _pages(data, suffix)
    if not pages:
        raise CropError(f"{doc_id}: the original has no pages")
    found: _Aligned | None = None
    if tpl is not None and digital:
        if tpage < len(pages):
            found = _Aligned(pages[tpage], True)
    elif tpl is not None:
        order = [tpage] + [i for i in range(len(pages)) if i != tpage] if tpage < len(pages) else list(range(len(pages)))
        for i in order:
            match, _n = register.best_match(pages[i], [tpl])
            if match is None or match.problem or match.view.page != tpage:
                continue
            found = _Aligned(register.warp(pages[i], match), True)
            break
    if found is None:
        found = _Aligned(pages[min(tpage, len(pages) - 1)], False)
    with _lock:
        _cache[(doc_id, tpage)] = found
        while len(_cache) > _CACHE_PAGES:
            _cache.popitem(last=False)
    return found


def crop(doc_id: str, original: bytes, *, suffix: str, registry: TemplateRegistry, form: str | None,
         field: str | None, digital: bool) -> tuple[bytes, bool]:
    """PNG of where ``field`` sits on the original, and whether it is a true crop (False: the whole page,
    scaled, because the form or field has no known place or the page could not be aligned)."""
    tpl = next((t for t in registry.templates() if t.form_id == form), None) if form else None
    widget = _widget(tpl, field) if tpl is not None and field else None
    page = _aligned_page(doc_id, original, suffix, tpl, widget.page if widget else 0, digital)
    gray = page.gray
    if widget is not None and page.aligned:
        x0, top, x1, bottom = widget.rect
        h, w = gray.shape
        box = (max(0, round((x0 - MARGIN_PT * 1.5) * PT)), max(0, round((top - MARGIN_PT * 1.8) * PT)),
               min(w, round((x1 + MARGIN_PT) * PT)), min(h, round((bottom + MARGIN_PT) * PT)))
        if box[2] > box[0] and box[3] > box[1]:
            return _png(np.ascontiguousarray(gray[box[1]:box[3], box[0]:box[2]])), True
    h, w = gray.shape
    scale = min(1.0, PAGE_WIDTH_PX / max(1, w))
    img = Image.fromarray(gray).resize((max(1, round(w * scale)), max(1, round(h * scale))))
    return _png(np.asarray(img)), False


def forget(doc_id: str) -> None:
    """Drop a document's aligned pages from memory (after its review is saved)."""
    with _lock:
        for k in [k for k in _cache if k[0] == doc_id]:
            del _cache[k]

"""Read scanned documents: split a scan into forms, recognise each page, register it, read its zones.

A scan may hold a stack of forms, scanned duplex with blank backs. Pages are looked at one by one:
blank pages are dropped; every other page is recognised as a page of some template (or of none). A new
document begins where the template changes, where a page of the current form comes round again (the next
form's copy of it), where unrecognised pages begin, after a separator sheet (a barcode, see
``is_separator``) and, when the practice asks for it, after a blank page. So a two-page form scanned back to front is still
one document, and a form with a page missing gets ``page.missing`` for it rather than invented values.
Only the current document's pages are held in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import zxingcpp

from extractors import ocr, register, zonal
from extractors.base import RawDocument, RawField, RawFlag
from extractors.images import Limits, PageImage, UnreadableImage, iter_image_pages, iter_pdf_pages
from extractors.templates import FormTemplate, TemplateRegistry

MAX_UNKNOWN_RUN = 10  # unrecognised pages read as one document at most
#: A fax page whose share of doubted fields is at least this is handwriting for sure (printed faxes stay
#: below 0.45, handwritten pages are mostly 0.67-1.0): every value the handwriting engine read is checked.
FAX_HANDWRITTEN_SHARE = 0.6
COARSE_DPI = 150  # below this (a 204x98 fax), one letter of an ID can turn into another with no trace


@dataclass
class ScanOptions:
    """What the scan reader needs from the application: the field types, a format check per field, and
    its limits. Kept as plain values so extractors do not depend on the application's settings."""

    types: dict[str, str] = field(default_factory=dict)
    check: zonal.Checker = lambda key, raw: True
    limits: Limits = field(default_factory=Limits)
    tesseract_timeout: float = 60.0
    deadline: float | None = None  # seconds for a file, plus ``page_seconds`` for each of its pages
    page_seconds: float = 8.0
    tessdata_cache: Path | None = None
    separator_codes: frozenset[str] = frozenset({"PATCHT"})  # barcode texts of separator sheets
    split_on_blank: bool = False  # blank pages end a document (off: duplex backs are blank)


@dataclass
class _Page:
    number: int  # 1-based page of the input
    gray: np.ndarray
    match: register.PageMatch | None
    dark: bool = False
    coarse: bool = False  # scanned below COARSE_DPI in one direction (a standard-resolution fax)
    bilevel: bool = False  # black and white only (a fax): handwriting loses the strokes that tell letters apart
    rivals: tuple[str, ...] = ()  # forms this page fits about equally well: not recognised, for a person


@dataclass
class _Doc:
    template: FormTemplate | None
    pages: dict[int, _Page] = field(default_factory=dict)  # template page -> scan page
    unknown: list[_Page] = field(default_factory=list)

    @property
    def numbers(self) -> list[int]:
        return sorted([p.number for p in self.pages.values()] + [p.number for p in self.unknown])


def is_blank(small: np.ndarray) -> bool:
    """No ink worth reading: the back of a one-sided sheet, a separator sheet. Specks and paper
    texture are not ink; an all-black page is not blank (it is unreadable, and said so)."""
    paper = float(np.percentile(small, 90))
    if paper < 80:
        return False
    dark = (small < paper - 80).astype(np.uint8)
    ink = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return float(ink.mean()) < 0.0002  # ~190 pixels at 100 dpi: less than one short line of text


def _is_dark(small: np.ndarray) -> bool:
    return float(np.percentile(small, 90)) < 80


_SEPARATOR_FORMATS = zxingcpp.BarcodeFormats(
    [zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128, zxingcpp.BarcodeFormat.Code39])


def is_separator(gray: np.ndarray, codes: frozenset[str]) -> bool:
    """A separator sheet: a page carrying a barcode whose text is one of ``codes`` (PATCHT, as scanner
    software and paperless-ngx print it, unless the practice configured its own). Those sheets are QR,
    Code 128 or Code 39; adding DataMatrix and Code 93 would more than double the time on every page.
    Only pages no form template matched are looked at. zxing-cpp rather than OpenCV's QR detector: it
    reads 1-D codes too, sideways and from a 204x98 dpi fax, in ~25 ms a page where OpenCV took 0.1-1 s."""
    if not codes:
        return False
    wanted = {c.strip().upper() for c in codes}
    found = zxingcpp.read_barcodes(gray, formats=_SEPARATOR_FORMATS)
    return any(b.text.strip().upper() in wanted for b in found)


def read_scan(path: Path, kind: str, registry: TemplateRegistry, opts: ScanOptions,
              pdf_reader: object | None = None) -> list[RawDocument]:
    """Every document in a scanned file, in page order, each with the input pages it came from."""
    start = time.monotonic()
    templates = registry.templates()
    eng = ocr.engine(opts.tessdata_cache)
    pages: Iterator[PageImage]
    if kind == "pdf":
        pages = iter_pdf_pages(path, pdf_reader, opts.limits)
    else:
        pages = iter_image_pages(path, opts.limits)

    docs: list[RawDocument] = []
    current: _Doc | None = None
    seen = 0
    blanks: list[int] = []

    def finish(doc: _Doc | None) -> None:
        if doc is not None:
            left = (opts.deadline or 60.0) + opts.page_seconds * seen - (time.monotonic() - start)
            docs.append(_read_doc(doc, opts, eng, max(5.0, left)))

    for page in pages:
        seen += 1
        if opts.deadline and time.monotonic() - start > opts.deadline + opts.page_seconds * seen:
            raise UnreadableImage(f"reading took longer than {opts.deadline + opts.page_seconds * seen:g} s")
        if not page.drawn:
            if current is None or current.template is not None:
                finish(current)
                current = _Doc(None)
            current.unknown.append(_Page(page.index + 1, page.gray, None))
            continue
        small = register.small(page.gray)
        if is_blank(small):
            blanks.append(page.index + 1)
            if opts.split_on_blank:
                finish(current)
                current = None
            continue
        match, _n = register.best_match(page.gray, templates) if not _is_dark(small) else (None, 0)
        if match is not None and match.inliers < register.MIN_INLIERS:
            match = None
        if match is None and not _is_dark(small) and is_separator(page.gray, opts.separator_codes):
            finish(current)
            current = None
            continue
        p = _Page(page.index + 1, page.gray, match, dark=_is_dark(small),
                  coarse=page.source_dpi is not None and page.source_dpi < COARSE_DPI, bilevel=page.bilevel)
        if match is not None and match.rivals:  # two forms fit about as well: a person says which
            p.rivals, p.match = (match.view.form_id, *match.rivals), None
            finish(current)
            finish(_Doc(None, unknown=[p]))
            current = None
            continue
        if match is None:
            # Unrecognised pages stay in memory until their document ends: hold at most a few at a time.
            if current is None or current.template is not None or len(current.unknown) >= MAX_UNKNOWN_RUN:
                finish(current)
                current = _Doc(None)
            current.unknown.append(p)
            continue
        tpl = next(t for t in templates if t.form_id == match.view.form_id and len(t.pages) > match.view.page)
        ti = match.view.page
        if current is None or current.template is None or current.template is not tpl or ti in current.pages:
            finish(current)
            current = _Doc(tpl)
        current.pages[ti] = p
    finish(current)
    if not docs:
        what = "every page is blank" if seen else "the file has no pages"
        docs.append(RawDocument(document_type="unknown", method="ocr", pages=seen, source_pages=[],
                                flags=[RawFlag("form.unrecognised", "error", f"no form found: {what}")]))
    return docs


def _read_other(doc: _Doc, opts: ScanOptions, eng: ocr.OcrEngine, seconds_left: float) -> RawDocument | None:
    """Pages no form template matched may still be an insurance card or a letter: hand them to the
    classifier when it is installed (extractors.classify); None keeps them ``form.unrecognised``."""
    try:
        from extractors import classify
    except ImportError:
        return None
    pages = [classify.PageInput(p.number, gray=p.gray) for p in doc.unknown]
    try:
        found = classify.read_unrecognised(pages, eng=eng, timeout=seconds_left,
                                           call_timeout=min(opts.tesseract_timeout, seconds_left))
    except Exception:  # noqa: BLE001 - a classifier failure must not cost the forms in the same stack
        return None
    if found is not None and found.source_pages is None:
        found.source_pages = doc.numbers
    return found


def _read_doc(doc: _Doc, opts: ScanOptions, eng: ocr.OcrEngine, seconds_left: float) -> RawDocument:
    if doc.template is None:
        dark = any(p.dark for p in doc.unknown)
        why = ("a page is completely dark (scanner lid open or a bad copy)" if dark
               else "the document matches no known form template")
        drawn = all(p.gray.size > 0 for p in doc.unknown)
        if not drawn:
            why = "the document has no text that can be read and no scanned page images"
        rivals = sorted({f for p in doc.unknown for f in p.rivals})
        if rivals:
            return RawDocument(document_type="unknown", method="ocr", pages=len(doc.unknown),
                               source_pages=doc.numbers,
                               flags=[RawFlag("form.unrecognised", "error", "the page fits the forms "
                                              + ", ".join(rivals[:-1]) + f" and {rivals[-1]} about equally "
                                              "well; a person says which")])
        other = _read_other(doc, opts, eng, seconds_left) if drawn and not dark else None
        if other is not None:
            return other
        return RawDocument(document_type="unknown", method="ocr", pages=len(doc.unknown), source_pages=doc.numbers,
                           flags=[RawFlag("form.unrecognised", "error", why)])
    tpl = doc.template
    raw = RawDocument(document_type="intake_form", form=tpl.form_id, method="ocr", pages=len(doc.pages),
                      source_pages=doc.numbers)
    raw.present = tpl.keys
    pviews = register.views(tpl)
    for tpage in tpl.pages:
        p = doc.pages.get(tpage.index)
        if p is None or p.match is None:
            for w in tpage.widgets:
                raw.fields[w.key] = RawField(None, 0.0, None)
            raw.flags.append(RawFlag("page.missing", "error", f"page {tpage.index + 1} of the form is missing"))
            continue
        if p.match.problem:
            for w in tpage.widgets:
                raw.fields[w.key] = RawField(None, 0.0, p.number)
            raw.flags.append(RawFlag("page.unaligned", "error",
                                     f"page {tpage.index + 1} of the form could not be aligned to the template "
                                     f"({p.match.problem}); its fields were not read"))
            continue
        anchors = [(x * zonal.PT, y * zonal.PT) for w in tpage.widgets
                   for x, y in ((w.rect[0], w.rect[1]), (w.rect[2], w.rect[3]))]
        warped = register.refine(p.gray, p.match, anchors)
        got = zonal.read_fields(warped, pviews[tpage.index], tpage.widgets, opts.types, opts.check,
                                page_no=p.number, eng=eng, timeout=opts.tesseract_timeout)
        raw.fields.update(got.fields)
        raw.flags.extend(got.flags)
        if p.coarse or p.bilevel:
            # Half the lines of a fine scan: Q reads as 0, I as 1, and the result still fits the format.
            # Handwriting on any fax loses more: a J and an S, a U and a K are the same few dots, and both
            # engines agree on the wrong one (JAMES read SAMES on 2 of 20 generated faxes), so a person
            # checks every handwritten value of a fax.
            flagged = {f.field for f in got.flags}
            # Only where the page is surely handwritten: a printed fax can pass for handwriting (up to 0.45).
            hand = set(got.hand_keys) if p.bilevel and got.doubted >= FAX_HANDWRITTEN_SHARE else set()
            for w in tpage.widgets:
                rf = got.fields.get(w.key)
                if rf is None or not rf.raw or w.key in flagged:
                    continue
                if p.coarse and opts.types.get(w.key) == "id":
                    raw.flags.append(RawFlag("low_confidence", "warning", "read from a standard-resolution fax, "
                                             "where letters and digits look alike; please check it", w.key))
                elif w.key in hand:
                    raw.flags.append(RawFlag("low_confidence", "warning", "handwriting read from a fax "
                                             "(black and white only); please check it", w.key))
        p.gray = np.empty((0, 0), np.uint8)  # done with it: free the page before the next one is read
    return raw


"""Read digital PDFs: AcroForm values (pypdf), or the text inside each field's rectangle (pdfplumber)."""

from __future__ import annotations

from pathlib import Path

import pdfplumber
from pypdf import PdfReader

from extractors.base import RawDocument, RawField, RawFlag
from extractors.pdffile import UnreadablePDF, open_pdf
from extractors.templates import (
    FormTemplate,
    Printed,
    TemplateRegistry,
    Widget,
    mark_zone,
    printed_in,
    tokens,
    widget_boxes,
)


def acroform_values(reader: PdfReader) -> dict[str, str | None]:
    """Field name -> value as stored (checkbox: its export value or /Off)."""
    fields = reader.get_fields() or {}
    values: dict[str, str | None] = {}
    for name, f in fields.items():
        v = f.get("/V")
        if v is None:
            values[name] = None
            continue
        if isinstance(v, list):
            v = ",".join(str(x) for x in v)
        values[name] = str(v)
    return values


def read_acroform(reader: PdfReader, tpl: FormTemplate, values: dict[str, str | None]) -> RawDocument:
    doc = RawDocument(document_type="intake_form", form=tpl.form_id, method="acroform", pages=len(reader.pages))
    page_of = {w.key: w.page + 1 for w in tpl.widgets()}
    source = {w.key: w.source for w in tpl.widgets() if w.source}
    for key in tpl.keys:
        value = values.get(key)
        if key not in values and key in source:
            value = values.get(source[key])  # a filled copy of the practice's original form
        doc.fields[key] = RawField(value, 1.0, page_of.get(key))
    doc.present = tpl.keys
    return doc


def _text_in(page: pdfplumber.page.Page, w: Widget, pad: float = 1.5) -> str | None:
    x0, top, x1, bottom = w.rect
    bbox = (max(0.0, x0 - pad), max(0.0, top - pad), min(float(page.width), x1 + pad), min(float(page.height), bottom + pad))
    text = page.within_bbox(bbox).extract_text() or ""
    text = " ".join(text.split())
    return text or None


# What a filling tool prints into a ticked box when it flattens a form: its check box appearance (ZapfDingbats
# or Wingdings glyphs, whatever letter they sit on: ZapfDingbats' filled square is the letter "n", its check
# mark "4"), or a tick character of a text font.
_TICK_CHARS = frozenset("xX\u2713\u2714\u2717\u2718\u2611\u2612\u25a0\u25aa\u25fc\u25fe\u2b1b\u25cf\u2022\u2588\u221a*")
_SYMBOL_FONTS = ("dingbat", "wingding", "webding")
_YES_WORDS = frozenset({"yes", "y", "on", "true"})
MARK_MIN_SHARE = 0.3  # a drawing at least this share of the box's width or height is a tick, not a speck


def read_mark(page: pdfplumber.page.Page, w: Widget, blank: tuple[Printed, ...],
              page_no: int) -> tuple[RawField, RawFlag | None]:
    """Ticked or not, from what a flattened copy prints in and around the box beyond what the blank form
    prints there. A tick glyph, any symbol-font glyph, or a drawing the size of a tick is ticked; a letter or
    word (someone typed "no" into the box) is sent to a person rather than guessed."""
    found = [p for p in printed_in(page, mark_zone(w)) if not any(p.same_as(b) for b in blank)]
    if not found:
        return RawField(None, 1.0, page_no), None
    chars = sorted((p for p in found if p.kind == "char"), key=lambda p: p.bbox[0])
    text = "".join(p.text for p in chars).strip()
    if chars and (any(any(s in p.font for s in _SYMBOL_FONTS) for p in chars)
                  or all(ch in _TICK_CHARS for ch in text if not ch.isspace())):
        return RawField("X", 1.0, page_no), None
    if chars and text.lower().rstrip(".") in _YES_WORDS:
        return RawField("X", 0.95, page_no), None
    x0, top, x1, bottom = w.rect
    size = max(1.0, min(x1 - x0, bottom - top))
    if not chars and any(max(p.bbox[2] - p.bbox[0], p.bbox[3] - p.bbox[1]) >= MARK_MIN_SHARE * size for p in found):
        return RawField("X", 0.95, page_no), None
    return RawField(None, 0.5, page_no), RawFlag(
        "low_confidence", "warning", "the check box holds printed text or a small mark rather than a clear tick; "
        "please check it", w.key)


def page_words(pdf: pdfplumber.PDF) -> list[set[str]]:
    return [tokens(p.extract_text() or "") for p in pdf.pages]


def read_text_layer(pdf: pdfplumber.PDF, tpl: FormTemplate, mapping: list[int | None]) -> RawDocument:
    """Each value is the text inside its field's rectangle on the page that carries that template page."""
    doc = RawDocument(document_type="intake_form", form=tpl.form_id, method="text", pages=len(pdf.pages))
    for tpage, doc_index in zip(tpl.pages, mapping, strict=True):
        if doc_index is None:
            for w in tpage.widgets:
                doc.fields[w.key] = RawField(None, 0.0, None)
            doc.flags.append(RawFlag("page.missing", "error", f"page {tpage.index + 1} of the form is missing"))
            continue
        page = pdf.pages[doc_index]
        for w in tpage.widgets:
            if w.kind == "checkbox":
                doc.fields[w.key], flag = read_mark(page, w, tpage.printed_near.get(w.key, ()), doc_index + 1)
                if flag is not None:
                    doc.flags.append(flag)
                continue
            doc.fields[w.key] = RawField(_text_in(page, w), 1.0, doc_index + 1)
    doc.present = tpl.keys
    return doc


MAX_UNRECOGNISED_PAGES = 20  # a letter is a few pages; a long unknown PDF is not read word by word


def read_unrecognised_text(pdf: pdfplumber.PDF) -> RawDocument:
    """A PDF with a text layer that matches no form template: a typed letter (a referral sent as a PDF)
    or a card printed from a payer's portal is classified and read from its words
    (:mod:`extractors.classify`); anything else stays ``unknown`` with ``form.unrecognised`` and the
    reason it is neither."""
    from extractors import classify, nlp  # spaCy loads only when a PDF is neither a form nor image-only

    pages = [classify.PageInput(i + 1, words=nlp.words_from_pdfplumber(page, i + 1), units_per_inch=72.0)
             for i, page in enumerate(pdf.pages[:MAX_UNRECOGNISED_PAGES])]
    found = classify.recognise(pages, method="text")
    if found.document is not None:
        found.document.pages = len(pdf.pages)
        return found.document
    return RawDocument(
        document_type="unknown", method="text", pages=len(pdf.pages),
        flags=[RawFlag("form.unrecognised", "error", f"the document matches no known form template ({found.reason})")],
    )


def _words_of(path: Path) -> list[set[str]]:
    try:
        with pdfplumber.open(str(path), password="") as pdf:
            return page_words(pdf)
    except Exception:
        return []


def read_pdf(path: Path, registry: TemplateRegistry, *, match_threshold: float = 0.55) -> RawDocument | None:
    """A digital PDF: AcroForm first (exact values), else the text layer against a recognised template.
    None when the PDF has no text at all: its pages are images and need the scan reader."""
    reader = open_pdf(path)
    values: dict[str, str | None] = {}
    try:
        values = acroform_values(reader)
    except RecursionError:
        raise UnreadablePDF("damaged PDF (its form structure loops)") from None
    except Exception:
        values = {}  # a broken form dictionary: fall back to the text layer
    if values:
        try:
            boxes = widget_boxes(reader)
        except Exception:
            boxes = {}  # a broken annotation list: names and printed words still decide
        tpl = registry.by_field_names(set(values), lambda: _words_of(path), boxes)
        if tpl is not None:
            return read_acroform(reader, tpl, values)
    try:
        with pdfplumber.open(str(path), password="") as pdf:
            words = page_words(pdf)
            if not any(words):
                return None  # no text layer: the pages are images, for the scan reader
            tpl, mapping, _score = registry.by_words(words, match_threshold)
            if tpl is None:
                return read_unrecognised_text(pdf)
            return read_text_layer(pdf, tpl, mapping)
    except UnreadablePDF:
        raise
    except RecursionError:
        raise UnreadablePDF("damaged PDF (its object structure loops)") from None
    except Exception as exc:
        raise UnreadablePDF(f"damaged PDF; its text cannot be read ({exc.__class__.__name__})") from None

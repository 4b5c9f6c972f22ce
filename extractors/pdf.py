"""Read digital PDFs: AcroForm values (pypdf), or the text inside each field's rectangle (pdfplumber)."""

from __future__ import annotations

from pathlib import Path

import pdfplumber
from pypdf import PdfReader

from extractors.base import RawDocument, RawField, RawFlag
from extractors.pdffile import UnreadablePDF, open_pdf
from extractors.templates import FormTemplate, TemplateRegistry, Widget, tokens


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
        tpl = registry.by_field_names(set(values), lambda: _words_of(path))
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

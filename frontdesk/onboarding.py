"""Bring your own form: turn a practice's existing form into a template Frontdesk reads.

A practice's forms name their fields ``Text1`` or ``DOB`` or nothing at all (a printed blank form). For
every box we gather the evidence a person would use to say what it means -- the field's name and tooltip,
the printed label left of or above it, its kind (text, check box, signature, a date format), and the
section heading it sits under ("Secondary insurance") -- and match it against the vocabulary's labels
and synonyms (``config/fields.yaml``). Each box gets a proposed key with a confidence and the reason.

Nothing is guessed silently: a box whose best key is weak, or barely better than the next one, is
*uncertain*; two boxes claiming one key are a *conflict*; a box that matches nothing is *unknown* and
kept out of the template. Only *proposed* rows (and rows a person confirmed) become widgets.

The written template is the original page content, untouched, with fresh widgets named by canonical
keys; each widget remembers the original field name (``/FrontdeskSource``), so filled copies of the
practice's original fillable PDF are recognised and read through the new template too.
"""

from __future__ import annotations

import enum
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from extractors.templates import SOURCE_KEY  # where a written widget keeps the original field name
from frontdesk.exceptions import ConfigError, ExitCode, FrontdeskError, InputFileError
from frontdesk.fields import Vocabulary

CONFIDENT = 0.75  # a proposal at least this strong ...
MARGIN = 0.15  # ... and this far ahead of the next key is accepted by --accept
WEAKEST = 0.40  # below this a box has no key at all (unknown, kept out)


class RowStatus(enum.StrEnum):
    proposed = "proposed"  # confident: written with --accept
    uncertain = "uncertain"  # a key is suggested but a person must confirm it
    conflict = "conflict"  # another box claims the same key as strongly
    unknown = "unknown"  # no key fits: kept out (or mapped by a person to a practice-defined key)
    confirmed = "confirmed"  # a person chose the key (interactively or with --map)


class FormKind(enum.StrEnum):
    fillable = "fillable"  # a PDF with form fields
    flattened = "flattened"  # a PDF with printed text and no fields
    scanned = "scanned"  # a page image (scan or photo of the blank form)


class OnboardingError(FrontdeskError):
    """The form cannot be onboarded (not readable, nothing to propose, a template of that id exists)."""

    exit_code = ExitCode.bad_input


# --------------------------------------------------------------------------------------------------
# What a page shows
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageWord:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    bold: bool = False


@dataclass
class Phrase:
    """Words of one line that belong together (a label, a heading, a sentence)."""

    words: list[PageWord]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (min(w.x0 for w in self.words), min(w.top for w in self.words),
                max(w.x1 for w in self.words), max(w.bottom for w in self.words))


@dataclass
class PageText:
    index: int
    width: float
    height: float
    words: list[PageWord]


@dataclass
class Box:
    """One place on the form a value goes: an existing widget or a detected answer area."""

    ident: str  # the original field name, or "area<n>" for a detected area
    page: int  # 0-based
    rect: tuple[float, float, float, float]  # x0, top, x1, bottom in points (top-left origin)
    kind: str  # "text" | "checkbox" | "signature"
    name: str | None = None  # original field name (fillable forms)
    tooltip: str | None = None
    date_format: bool = False  # the field formats its value as a date (AFDate)
    drawn_as: str = "field"  # field | box | underline | checkbox


@dataclass
class Row:
    box: Box
    label: str = ""
    heading: str = ""
    key: str | None = None
    confidence: float = 0.0
    reason: str = ""
    status: RowStatus = RowStatus.unknown
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return self.key is not None and self.status in (RowStatus.proposed, RowStatus.confirmed)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.box.ident, "page": self.box.page + 1, "label": self.label, "field_name": self.box.name,
                "kind": self.box.kind, "drawn_as": self.box.drawn_as,
                "rect": [round(v, 1) for v in self.box.rect], "key": self.key,
                "confidence": round(self.confidence, 2), "status": self.status.value, "reason": self.reason,
                "alternatives": [{"key": k, "confidence": round(s, 2)} for k, s in self.alternatives]}


@dataclass
class Proposal:
    source: Path
    form_id: str
    kind: FormKind
    pages: list[PageText]
    rows: list[Row]
    required_missing: list[str] = field(default_factory=list)
    page_images: list[np.ndarray] | None = None  # the scanned pages (scanned forms only), WORK_DPI gray

    def by_status(self, *statuses: RowStatus) -> list[Row]:
        return [r for r in self.rows if r.status in statuses]

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form_id, "source_kind": self.kind.value, "pages": len(self.pages),
                "rows": [r.as_dict() for r in self.rows],
                "counts": {s.value: len(self.by_status(s)) for s in RowStatus},
                "required_missing": self.required_missing}


# --------------------------------------------------------------------------------------------------
# Words and keys
# --------------------------------------------------------------------------------------------------

_STOP = frozenset({"of", "the", "a", "an", "your", "you", "please", "print", "s", "if", "any", "or", "and", "to",
                   "for", "in", "on", "is", "are", "this", "my", "i", "me", "here", "enter", "required", "optional",
                   "patient's"})
_GENERIC_NAME = frozenset({"text", "field", "check", "box", "checkbox", "textfield", "fill", "untitled", "button",
                           "tx", "cb", "chk", "txt", "fld", "tb", "form", "page", "subform", "topmostsubform"})
_FORMAT_TOKENS = frozenset({"mm", "dd", "yyyy", "yy", "mmddyyyy", "mm/dd/yyyy", "mm/dd/yy"})
_ABBREV = {"ins": "insurance", "dob": "dob", "tel": "phone", "ph": "phone", "no": "number", "num": "number",
           "nbr": "number", "addr": "address", "grp": "group", "sig": "signature", "rel": "relationship",
           "pt": "patient", "emerg": "emergency", "zipcode": "zip", "e-mail": "email", "mail": "email",
           "telephone": "phone", "yr": "year", "policyholder": "policy holder", "cellphone": "cell phone"}
# Words that say which part of the form a box belongs to, and the key group they point to.
_CONTEXT = (("secondary", "insurance.secondary"), ("2nd", "insurance.secondary"), ("emergency", "emergency_contact"),
            ("primary", "insurance.primary"), ("1st", "insurance.primary"))
_HEADING_CONTEXT = (*_CONTEXT, ("insurance", "insurance.primary"), ("coverage", "insurance.primary"),
                    ("insured", "insurance.primary"), ("subscriber", "insurance.primary"),
                    ("consent", "consent"), ("signature", "consent"), ("agreement", "consent"),
                    ("authorization", "consent"), ("acknowledg", "consent"), ("privacy", "consent"),
                    ("patient", "patient"), ("personal", "patient"), ("demographic", "patient"))
_NEEDS_CONTEXT = ("insurance.secondary", "emergency_contact")


def _group(key: str) -> str:
    for g in ("insurance.primary", "insurance.secondary", "emergency_contact", "consent", "patient", "insurance"):
        if key.startswith(g + ".") or key == g:
            return g
    return key.rsplit(".", 1)[0]


def split_words(text: str) -> list[str]:
    """Lower-case words of a label or a field name: camelCase, snake_case and "ID#" come apart."""
    text = re.sub(r"\[\d+\]", " ", text)  # XFA-style name parts: form1[0].Page1[0].DOB[0]
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    text = re.sub(r"([A-Za-z])(\d)", r"\1 \2", text)
    text = text.lower().replace("#", " number ").replace("’", "'")
    out: list[str] = []
    for raw in re.split(r"[\s_.,:;()*\[\]{}|\\/\-]+", text):
        word = raw.strip("'\"?!")
        if not word:
            continue
        if word.endswith("'s"):
            word = word[:-2]
        for part in _ABBREV.get(word, word).split():
            out.append(part)
    return out


def _core(words: list[str]) -> tuple[str | None, list[str]]:
    """The context a phrase names ("secondary", "emergency") and its remaining meaningful words."""
    context = None
    for word, group in _CONTEXT:
        if word in words:
            context = group
            break
    drop = {w for w, _g in _CONTEXT}
    if context == "emergency_contact":
        drop |= {"contact", "ice"}
    core = [w for w in words if w not in drop and w not in _STOP and w not in _FORMAT_TOKENS and not w.isdigit()
            and (len(w) > 1 or w == "#")]
    if context is None and "ice" in words:
        context = "emergency_contact"
    return context, core


def _phrase_score(text: set[str], syn: set[str], statement: bool = False) -> float:
    if not text or not syn:
        return 0.0
    if text == syn:
        return 1.0
    if syn <= text:  # the label says more than the phrase: "I do not have health insurance (self-pay)"
        s = 0.55 + 0.3 * len(syn) / len(text)
        # A check box's label is a sentence; a phrase of several words found in it is strong evidence.
        return max(s, 0.8) if statement and len(syn) >= 2 else s
    common = text & syn
    if not common:
        return 0.0
    return 0.55 * len(common) / len(text | syn)


@dataclass
class KeyMatcher:
    """Vocabulary keys with the phrases that name them, from ``fields.yaml`` (labels and ``synonyms``)."""

    vocab: Vocabulary
    phrases: dict[str, list[tuple[str | None, frozenset[str], str]]]  # key -> (context, core words, phrase)
    known: list[str] = field(default_factory=list)  # every word of every phrase, for spelling near misses

    @classmethod
    def load(cls, vocab: Vocabulary, fields_file: Path) -> KeyMatcher:
        try:
            data = yaml.safe_load(Path(fields_file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{fields_file}: cannot read synonyms ({exc.__class__.__name__})") from None
        synonyms = data.get("synonyms") or {}
        raw_fields = data.get("fields") or {}
        phrases: dict[str, list[tuple[str | None, frozenset[str], str]]] = {}
        for key, spec in vocab.fields.items():
            if not (raw_fields.get(key) or {}).get("intake", True) or spec.form:
                # card- and letter-only keys are not boxes on an intake form; a key of another form
                # (``form:``, issue 16) is offered as a choice but never proposed for a registration box
                continue
            texts = [spec.label, *[str(s) for s in synonyms.get(key, []) or []]]
            entries = []
            for t in texts:
                ctx, core = _core(split_words(t))
                if core:
                    entries.append((ctx, frozenset(core), t))
            phrases[key] = entries
        # The secondary insurance's boxes are named like the primary's ("Member ID" under "Secondary
        # insurance"): they share its phrases, and the section decides between them.
        for key in list(phrases):
            if key.startswith("insurance.secondary."):
                twin = "insurance.primary." + key.split(".", 2)[2]
                phrases[key] = phrases[key] + phrases.get(twin, [])
        for key in synonyms:
            if key not in vocab.fields:
                raise ConfigError(f"{fields_file}: synonyms name unknown field {key}")
        return cls(vocab, phrases)

    def _spelled(self, words: list[str]) -> tuple[set[str], int]:
        """Words of a label with OCR near misses of vocabulary words put right; and how many were."""
        import difflib

        if not self.known:
            self.known = sorted({w for entries in self.phrases.values() for _c, syn, _p in entries for w in syn}
                                | set(_ABBREV))
        known = self.known
        out, fixed = set(), 0
        for w in words:
            if len(w) >= 5 and w not in known:
                near = difflib.get_close_matches(w, known, n=1, cutoff=0.85)
                if near:
                    out.update(_ABBREV.get(near[0], near[0]).split())
                    fixed += 1
                    continue
            out.add(w)
        return out, fixed

    def score(self, text: str, heading_context: str | None, kind: str, date_format: bool) -> list[tuple[str, float, str]]:
        """Keys that ``text`` may name, best first: (key, score, the phrase that matched)."""
        text_ctx, core = _core(split_words(text))
        words, fixed = self._spelled(core)
        context = text_ctx or heading_context
        out: list[tuple[str, float, str]] = []
        for key, entries in self.phrases.items():
            ftype = self.vocab.fields[key].type
            if (kind == "checkbox") != (ftype == "checkbox"):
                continue
            best, best_phrase = 0.0, ""
            covered: set[str] = set()
            for _ctx, syn, phrase in entries:
                s = _phrase_score(words, set(syn), kind == "checkbox")
                if syn <= words:
                    covered |= syn
                if s > best:
                    best, best_phrase = s, phrase
            if covered and covered != words:  # several of the key's phrases in one label: "Signature (sign ...)"
                best = max(best, 0.55 + 0.3 * len(covered) / len(words))
            if best <= 0:
                continue
            group = _group(key)
            if context == group:
                best += 0.1
            elif group in _NEEDS_CONTEXT:
                best -= 0.4  # "Member ID" alone is the primary one; "Name" alone is not the emergency contact
            elif context in ("insurance.primary", "insurance.secondary", "emergency_contact") and group == "patient":
                best -= 0.3  # a "DOB" box under "Insurance" is most often the subscriber's: ask
            elif context == "insurance.secondary" and group == "insurance.primary":
                best -= 0.3
            if kind == "signature":
                best += 0.1 if ftype == "signature" else -0.3
            if date_format or "mm" in split_words(text) or "yyyy" in split_words(text):
                best += 0.05 if ftype == "date" else -0.25
            best -= 0.05 * fixed  # a word read as a near miss ("Teleohone" by OCR) is a little less sure
            out.append((key, min(best, 1.0), best_phrase))
        out.sort(key=lambda t: -t[1])
        return out


# --------------------------------------------------------------------------------------------------
# Labels and headings from the page's words
# --------------------------------------------------------------------------------------------------


def phrases_of(words: Iterable[PageWord], gap: float = 9.0) -> list[Phrase]:
    """Group words into phrases: same line (tops within a few points), close together."""
    lines: list[list[PageWord]] = []
    for w in sorted(words, key=lambda w: ((w.top + w.bottom) / 2, w.x0)):
        mid = (w.top + w.bottom) / 2
        for line in lines:
            lm = sum((x.top + x.bottom) / 2 for x in line) / len(line)
            if abs(lm - mid) <= max(2.5, 0.35 * (w.bottom - w.top)):
                line.append(w)
                break
        else:
            lines.append([w])
    out: list[Phrase] = []
    for line in lines:
        line.sort(key=lambda w: w.x0)
        cur = [line[0]]
        for w in line[1:]:
            h = max(w.bottom - w.top, 6.0)
            if w.x0 - cur[-1].x1 <= max(gap, 0.9 * h):
                cur.append(w)
            else:
                out.append(Phrase(cur))
                cur = [w]
        out.append(Phrase(cur))
    return out


def _clip_to(phrase: Phrase, x1: float) -> Phrase:
    kept = [w for w in phrase.words if w.x0 < x1 - 2]
    return Phrase(kept or phrase.words[:1])


def find_label(box: Box, phrases: list[Phrase], boxes_on_page: list[Box]) -> tuple[Phrase | None, str]:
    """The printed label of a box and where it sits: left on the same line, above, right (check boxes),
    or below (a signature line with its caption underneath)."""
    x0, top, x1, bottom = box.rect
    mid = (top + bottom) / 2
    h = bottom - top

    def blocked(px1: float, bx0: float) -> bool:  # another box between the label and this box
        return any(b is not box and b.rect[0] >= px1 - 1 and b.rect[2] <= bx0 + 1
                   and b.rect[1] < bottom and b.rect[3] > top for b in boxes_on_page)

    same_line = [p for p in phrases if p.box[1] - 2 <= mid <= p.box[3] + 2 or
                 (p.box[1] >= top - 3 and p.box[3] <= bottom + 3)]
    if box.kind == "checkbox":  # its statement is beside it; OCR may place it a little higher or lower
        right = [p for p in phrases if p.box[1] - 5 <= mid <= p.box[3] + 5 and p.box[0] >= x1 - 1 and p.box[0] - x1 < 90
                 and not blocked(x1, p.box[0])]
        if right:
            return min(right, key=lambda p: p.box[0]), "right"
    left = [p for p in same_line if p.box[2] <= x0 + 2 and x0 - p.box[2] < 160 and not blocked(p.box[2], x0)]
    if left:
        near = max(left, key=lambda p: p.box[2])
        if x0 - near.box[2] < 40 or box.drawn_as == "underline":
            return near, "left"
    below = [p for p in phrases if bottom - 2 <= p.box[1] <= bottom + 16 and x0 - 8 <= p.box[0] < x1 - 4]
    if below and box.drawn_as == "underline":  # "______ / Signature of parent": captions go under lines
        return _clip_to(min(below, key=lambda p: p.box[1]), x1), "below"
    above = [p for p in phrases if top - max(24.0, 1.4 * h) <= p.box[3] <= top + 2 and x0 - 8 <= p.box[0] < x1 - 4]
    if above:
        best = min(above, key=lambda p: (top - p.box[3]) + 0.1 * abs(p.box[0] - x0))
        return _clip_to(best, x1), "above"
    if left:
        return max(left, key=lambda p: p.box[2]), "left"
    if box.kind == "checkbox":
        lefts = [p for p in same_line if p.box[2] <= x0 + 2 and x0 - p.box[2] < 60]
        if lefts:
            return max(lefts, key=lambda p: p.box[2]), "left"
    if below:
        return _clip_to(min(below, key=lambda p: p.box[1]), x1), "below"
    return None, ""


def _heading_context(text: str) -> str | None:
    low = text.lower()
    for word, group in _HEADING_CONTEXT:
        if re.search(rf"\b{re.escape(word)}", low):
            return group
    return None


def find_heading(box: Box, headings: list[Phrase]) -> Phrase | None:
    """The nearest section heading above the box that says which part of the form it is."""
    top = box.rect[1]
    above = [p for p in headings if p.box[3] <= top + 1 and _heading_context(p.text)]
    return max(above, key=lambda p: p.box[3]) if above else None


# --------------------------------------------------------------------------------------------------
# Reading the form
# --------------------------------------------------------------------------------------------------


def _pdf_pages_words(path: Path) -> list[PageText]:
    import pdfplumber

    out: list[PageText] = []
    with pdfplumber.open(str(path)) as pdf:
        for i, page in enumerate(pdf.pages):
            words = [PageWord(w["text"], float(w["x0"]), float(w["top"]), float(w["x1"]), float(w["bottom"]),
                              "bold" in str(w.get("fontname", "")).lower())
                     for w in page.extract_words(extra_attrs=["fontname"], keep_blank_chars=False)]
            out.append(PageText(i, float(page.width), float(page.height), words))
    return out


def _is_date_format(annot: Any) -> bool:
    try:
        aa = annot["/AA"].get_object()
        js = aa["/F"].get_object()["/JS"].get_object()
        text = js.get_data().decode("latin-1") if hasattr(js, "get_data") else str(js)
        return "AFDate" in text
    except Exception:
        return False


def _widget_boxes(path: Path) -> list[Box]:
    from pypdf import PdfReader

    from extractors.templates import _field_name, _field_type

    reader = PdfReader(str(path), strict=False)
    boxes: list[Box] = []
    seen: set[str] = set()
    for i, page in enumerate(reader.pages):
        height = float(page.mediabox.height)
        annots = page.get("/Annots")
        for ref in (annots.get_object() if annots is not None else []):
            annot = ref.get_object()
            if annot.get("/Subtype") != "/Widget":
                continue
            name = _field_name(annot)
            if not name:
                continue
            ftype = _field_type(annot)
            node = annot if "/Ff" in annot else (annot.get("/Parent").get_object() if annot.get("/Parent") else annot)
            flags = int(node.get("/Ff", 0) or 0)
            if ftype == "checkbox" and flags & (1 << 16):
                continue  # a push button: nothing to read
            if ftype == "checkbox" and flags & (1 << 15):
                ftype = "radio"
            x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
            x0, x1 = sorted((x0, x1))
            y0, y1 = sorted((y0, y1))
            tu = annot.get("/TU") or (annot.get("/Parent").get_object().get("/TU") if annot.get("/Parent") else None)
            ident = name if name not in seen else f"{name}#{len(seen)}"
            seen.add(name)
            boxes.append(Box(ident, i, (x0, height - y1, x1, height - y0), ftype, name=name,
                             tooltip=str(tu) if tu else None, date_format=_is_date_format(annot)))
    return boxes


def _scanned_pages(path: Path) -> tuple[list[PageText], list[np.ndarray]]:
    """Page images of a scanned blank form, and their printed words by OCR (points, top-left origin)."""
    from extractors import ocr
    from extractors.base import sniff
    from extractors.images import Limits, iter_image_pages, iter_pdf_pages
    from extractors.pdf import open_pdf
    from extractors.zonal import normalise_paper

    kind = sniff(path)
    limits = Limits(max_pages=10)
    pages = iter_pdf_pages(path, open_pdf(path), limits) if kind == "pdf" else iter_image_pages(path, limits)
    eng = ocr.engine()
    texts: list[PageText] = []
    images: list[np.ndarray] = []
    scale = 72 / 300
    for p in pages:
        if not p.drawn:
            raise OnboardingError(f"{path.name}: page {p.index + 1} has neither text nor a scanned image")
        straight = deskew(p.gray)
        gray = _light_bands(normalise_paper(straight))
        words = [PageWord(w.text, w.left * scale, w.top * scale, (w.left + w.width) * scale,
                          (w.top + w.height) * scale)
                 for w in ocr.run(gray, eng=eng, psm=11, lang="eng", timeout=120) if w.conf >= 40 and
                 any(c.isalnum() for c in w.text)]
        h, w = gray.shape
        texts.append(PageText(p.index, w * scale, h * scale, words))
        images.append(straight)
    return texts, images


def deskew(gray: np.ndarray, max_degrees: float = 2.0) -> np.ndarray:
    """The scanned page turned straight: a form's rules and lines of type lie level. The template is this
    straight page, so its boxes are true rectangles (and found as such); the layout itself is unchanged."""
    import cv2

    small = cv2.resize(gray, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    ink = (small < np.percentile(small, 90) - 60).astype(np.float32)
    h, w = ink.shape
    centre = (w / 2, h / 2)

    def sharpness(angle: float) -> float:
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rows = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR).sum(axis=1)
        return float(np.var(rows))

    angles = np.arange(-max_degrees, max_degrees + 1e-6, 0.25)
    best = max(angles, key=sharpness)
    fine = np.arange(best - 0.25, best + 0.25 + 1e-6, 0.05)
    best = max(fine, key=sharpness)
    if abs(best) < 0.04:
        return gray
    H, W = gray.shape
    m = cv2.getRotationMatrix2D((W / 2, H / 2), float(best), 1.0)
    return cv2.warpAffine(gray, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=int(np.percentile(small, 90)))


def _light_bands(gray: np.ndarray) -> np.ndarray:
    """White type on dark bands (section headings) turned dark on light, so OCR reads the headings."""
    import cv2

    dark = (gray < 110).astype(np.uint8)
    solid = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((25, 25), np.uint8))  # areas, not strokes
    solid = cv2.morphologyEx(solid, cv2.MORPH_CLOSE, np.ones((35, 35), np.uint8))  # with the type inside
    if not solid.any():
        return gray
    out = gray.copy()
    n, _lab, stats, _c = cv2.connectedComponentsWithStats(solid)
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if w >= 150 and h >= 40:
            out[y:y + h, x:x + w] = 255 - out[y:y + h, x:x + w]
    return out


def _render(path: Path) -> list[np.ndarray]:
    from extractors.register import render_template

    return render_template(path)


def read_form(path: Path) -> tuple[FormKind, list[PageText], list[Box], list[np.ndarray] | None]:
    """The form's pages, words and boxes: its widgets when it has any, else detected answer areas."""
    from extractors import layout
    from extractors.base import sniff
    from extractors.pdf import UnreadablePDF, open_pdf

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    kind = sniff(path)
    if kind in ("empty", "other", "x12"):
        raise InputFileError(path, "not a PDF, TIFF, JPEG or PNG file")
    images: list[np.ndarray] | None = None
    if kind == "pdf":
        try:
            open_pdf(path)
        except UnreadablePDF as exc:
            raise InputFileError(path, exc.reason) from None
        boxes = _widget_boxes(path)
        pages = _pdf_pages_words(path)
        if boxes:
            return FormKind.fillable, pages, boxes, None
        if any(p.words for p in pages):
            grays = _render(path)
            form_kind = FormKind.flattened
        else:
            pages, grays = _scanned_pages(path)
            images, form_kind = grays, FormKind.scanned
    else:
        pages, grays = _scanned_pages(path)
        images, form_kind = grays, FormKind.scanned
    boxes = []
    for page, gray in zip(pages, grays, strict=True):
        wboxes = [(w.x0, w.top, w.x1, w.bottom) for w in page.words]
        for area in layout.detect_areas(gray, page.index, wboxes):
            boxes.append(Box(f"area{len(boxes) + 1}", page.index, area.rect, area.kind, drawn_as=area.drawn_as))
    return form_kind, pages, boxes, images


# --------------------------------------------------------------------------------------------------
# The proposal
# --------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:60] or "form"


def propose(path: Path, vocab: Vocabulary, fields_file: Path, form_id: str | None = None,
            required: Iterable[str] = ()) -> Proposal:
    """A key for every box of the form at ``path``, with confidence, reason and status."""
    kind, pages, boxes, images = read_form(path)
    if not boxes:
        raise OnboardingError(f"{Path(path).name}: no form fields and no answer areas (boxes, lines, check boxes) found")
    matcher = KeyMatcher.load(vocab, fields_file)
    rows: list[Row] = []
    for page in pages:
        page_boxes = [b for b in boxes if b.page == page.index]
        phrases = phrases_of(page.words)
        used: set[int] = set()
        found: list[tuple[Box, Phrase | None, str]] = []
        for b in page_boxes:
            label, where = find_label(b, phrases, page_boxes)
            if label is not None:
                used.update(id(w) for w in label.words)
            found.append((b, label, where))
        headings = [p for p in phrases if not any(id(w) in used for w in p.words)]
        # Headings are the printed phrases that label no box ("PRIMARY INSURANCE", "3. Insurance").
        for b, label, where in found:
            rows.append(_judge(b, label, where, find_heading(b, headings), matcher))
    _resolve_conflicts(rows)
    rows.sort(key=lambda r: (r.box.page, round(r.box.rect[1] / 10), r.box.rect[0]))
    keys = {r.key for r in rows if r.written}
    return Proposal(Path(path), form_id or _slug(Path(path).stem), kind, pages, rows,
                    sorted(k for k in required if k not in keys), images)


def _judge(box: Box, label: Phrase | None, where: str, heading: Phrase | None, matcher: KeyMatcher) -> Row:
    row = Row(box, label=label.text if label else "", heading=heading.text if heading else "")
    if box.kind == "radio":
        row.reason = "a radio button group: map it by hand (--map) if the form needs it"
        return row
    hctx = _heading_context(heading.text) if heading else None
    low = label.text.lower() if label is not None else ""
    if box.kind == "text" and re.search(r"\bsignature\b|\bsign here\b", low) and "date" not in low:
        box.kind = "signature"  # a line or box captioned "Signature ...": where people sign
    evidence: list[tuple[str, str, float]] = []  # (what, text, weight)
    if label is not None:
        evidence.append((f"label {where}", label.text, 1.0))
    if box.tooltip:
        evidence.append(("tooltip", box.tooltip, 1.0))
    if box.name:
        parts = [p for p in split_words(box.name.split(".")[-1]) if p not in _GENERIC_NAME and not p.isdigit()]
        if parts:
            evidence.append(("field name", box.name.split(".")[-1], 0.95))
    scores: dict[str, float] = {}
    why: dict[str, list[str]] = {}
    for what, text, weight in evidence:
        for key, s, phrase in matcher.score(text, hctx, box.kind, box.date_format)[:6]:
            s *= weight
            if s > scores.get(key, 0.0):
                scores[key] = s
            if s >= WEAKEST:
                why.setdefault(key, []).append(f'{what} "{text}" ~ "{phrase}"')
    # Two independent pieces of evidence naming the same key make it surer.
    for key, reasons in why.items():
        if len(reasons) >= 2:
            scores[key] = min(1.0, scores[key] + 0.1)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    row.alternatives = ranked[1:4]
    if not ranked or ranked[0][1] < WEAKEST:
        row.status = RowStatus.unknown
        row.reason = ("no label, tooltip or name found" if not evidence
                      else "no vocabulary key fits " + "; ".join(f'{w} "{t}"' for w, t, _ in evidence))
        if ranked:
            row.confidence = ranked[0][1]
        return row
    key, best = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    row.key, row.confidence = key, best
    parts = list(why.get(key, []))
    if heading is not None and hctx:
        parts.append(f'section "{heading.text[:40]}"')
    if box.date_format:
        parts.append("date format")
    if best >= CONFIDENT and best - second >= MARGIN:
        row.status = RowStatus.proposed
    else:
        row.status = RowStatus.uncertain
        parts.append(f"close to {ranked[1][0]} ({second:.2f})" if best - second < MARGIN and len(ranked) > 1
                     else "weak match")
    row.reason = "; ".join(parts)
    return row


def _resolve_conflicts(rows: list[Row]) -> None:
    """One key, one box. A clear winner keeps the key and the others fall back to their next choice;
    otherwise every claimant is marked a conflict for a person to settle."""
    for _round in range(3):
        claims: dict[str, list[Row]] = {}
        for r in rows:
            if r.key is not None and r.status in (RowStatus.proposed, RowStatus.uncertain, RowStatus.conflict):
                claims.setdefault(r.key, []).append(r)
        changed = False
        for key, claimants in claims.items():
            if len(claimants) < 2:
                continue
            claimants.sort(key=lambda r: -r.confidence)
            top, rest = claimants[0], claimants[1:]
            if top.status == RowStatus.proposed and all(top.confidence - r.confidence >= MARGIN for r in rest):
                for r in rest:
                    alts = [(k, s) for k, s in r.alternatives if k != key and s >= WEAKEST]
                    old = r.key
                    if alts:
                        r.key, r.confidence = alts[0]
                        r.alternatives = alts[1:]
                        r.status = RowStatus.uncertain
                        r.reason = f"{old} went to a stronger box; next best"
                    else:
                        r.key, r.status = None, RowStatus.unknown
                        r.reason = f"{old} went to a stronger box ({top.box.ident}); nothing else fits"
                    changed = True
            else:
                for r in claimants:
                    if r.status != RowStatus.conflict:
                        r.status = RowStatus.conflict
                        others = ", ".join(o.box.ident for o in claimants if o is not r)
                        r.reason = f"{r.reason}; conflict: {others} also proposed for {key}"
                        changed = True
        if not changed:
            break


def apply_choices(proposal: Proposal, choices: Mapping[str, str | None], vocab: Vocabulary) -> None:
    """A person's decisions: box id -> key (confirmed) or None (left out). Keys must be in the vocabulary."""
    by_id = {r.box.ident: r for r in proposal.rows}
    for ident, key in choices.items():
        row = by_id.get(ident)
        if row is None:
            raise OnboardingError(f"--map: the form has no field or area named {ident!r}")
        if key is None:
            row.key, row.status, row.reason = None, RowStatus.unknown, "left out by a person"
            continue
        if key not in vocab.fields:
            raise OnboardingError(f"--map: {key!r} is not a key of the vocabulary; add it to fields.yaml first")
        row.key, row.status, row.confidence = key, RowStatus.confirmed, 1.0
        row.reason = "chosen by a person"
    taken: dict[str, Row] = {}
    for r in proposal.rows:
        if r.written and r.key is not None:
            other = taken.get(r.key)
            if other is not None:
                if r.status == RowStatus.confirmed and other.status != RowStatus.confirmed:
                    other.status, other.reason = RowStatus.conflict, f"{r.key} was given to {r.box.ident} by a person"
                    taken[r.key] = r
                    continue
                r.status = RowStatus.conflict
                r.reason = f"{r.key} is also given to {other.box.ident}"
                continue
            taken[r.key] = r
    keys = {r.key for r in proposal.rows if r.written}
    proposal.required_missing = [k for k in proposal.required_missing if k not in keys]


def form_keys(vocab: Vocabulary, fields_file: Path) -> list[str]:
    """Keys a box on an intake form may have (card- and letter-only keys are not), in vocabulary order:
    the choices a person is offered for a box."""
    data = yaml.safe_load(Path(fields_file).read_text(encoding="utf-8")) or {}
    raw = data.get("fields") or {}
    return [k for k in vocab.fields if (raw.get(k) or {}).get("intake", True)]


def required_keys(vocab: Vocabulary, fields_file: Path) -> list[str]:
    """Keys the practice's rules need on an intake form: required fields, the insurance rule's fields,
    and what the pre-visit check looks at (signature, consent, date of birth, primary insurance)."""
    data = yaml.safe_load(Path(fields_file).read_text(encoding="utf-8")) or {}
    raw = data.get("fields") or {}
    keys = [k for k, s in vocab.fields.items() if s.required in ("always", "unless_self_pay")
            and (raw.get(k) or {}).get("intake", True) and not s.form]
    for k in (*vocab.missing_insurance.fields, vocab.missing_insurance.unless_checked):
        if k and k not in keys:
            keys.append(k)
    try:
        from frontdesk.checks.rules import PRIMARY_REQUIRED
        for k in PRIMARY_REQUIRED:
            if k not in keys:
                keys.append(k)
    except ImportError:  # pragma: no cover - the checks package is part of Frontdesk
        pass
    return keys


# --------------------------------------------------------------------------------------------------
# Writing the template
# --------------------------------------------------------------------------------------------------


def _image_pdf(images: list[np.ndarray]) -> bytes:
    """A PDF whose pages are the scanned blank form (300 dpi), as it is: its layout is the form's."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    buf = io.BytesIO()
    c = Canvas(buf, invariant=1)
    for gray in images:
        h, w = gray.shape
        pw, ph = w * 72 / 300, h * 72 / 300
        c.setPageSize((pw, ph))
        im = Image.fromarray(gray)
        jb = io.BytesIO()
        im.save(jb, "JPEG", quality=85)
        jb.seek(0)
        c.drawImage(ImageReader(jb), 0, 0, pw, ph)
        c.showPage()
    c.save()
    return buf.getvalue()


def _checkbox_ap(writer: Any, w: float, h: float) -> Any:
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    def stream(content: bytes) -> Any:
        s = DecodedStreamObject()
        s.set_data(content)
        s.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Form"),
                  NameObject("/BBox"): ArrayObject([NumberObject(0), NumberObject(0), NumberObject(int(w)),
                                                    NumberObject(int(h))])})
        return writer._add_object(s)

    on = stream(f"q 0 g 1 w 2 2 m {w - 2:.1f} {h - 2:.1f} l S 2 {h - 2:.1f} m {w - 2:.1f} 2 l S Q".encode())
    off = stream(b"")
    return DictionaryObject({NameObject("/N"): DictionaryObject({NameObject("/Yes"): on, NameObject("/Off"): off})})


def write_template(proposal: Proposal, out: Path) -> Path:
    """The form's own pages with a widget per written row, named by its key. Other widgets are dropped;
    the page content (the printed form) is not changed."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        BooleanObject,
        DictionaryObject,
        FloatObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    rows = [r for r in proposal.rows if r.written]
    if not rows:
        raise OnboardingError(f"{proposal.source.name}: no box has an accepted key; nothing to write")
    if proposal.kind == FormKind.scanned:
        if proposal.page_images is None:
            raise OnboardingError("the scanned pages are no longer available")
        reader = PdfReader(io.BytesIO(_image_pdf(proposal.page_images)))
    else:
        reader = PdfReader(str(proposal.source), strict=False)
    writer = PdfWriter()
    for page in reader.pages:
        if "/Annots" in page:
            old = page["/Annots"].get_object()
            keep = ArrayObject([a for a in (old if isinstance(old, ArrayObject) else [])
                                if a.get_object().get("/Subtype") != "/Widget"])
            if keep:
                page[NameObject("/Annots")] = keep
            else:
                del page[NameObject("/Annots")]
        writer.add_page(page)
    helv = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"), NameObject("/Encoding"): NameObject("/WinAnsiEncoding")}))
    fields = ArrayObject()
    for r in rows:
        page = writer.pages[r.box.page]
        ph = float(page.mediabox.height)
        oy = float(page.mediabox.bottom)
        ox = float(page.mediabox.left)
        x0, top, x1, bottom = r.box.rect
        rect = ArrayObject([FloatObject(round(ox + x0, 2)), FloatObject(round(oy + ph - bottom, 2)),
                            FloatObject(round(ox + x1, 2)), FloatObject(round(oy + ph - top, 2))])
        assert r.key is not None
        annot = DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/T"): TextStringObject(r.key), NameObject("/Rect"): rect,
            NameObject("/F"): NumberObject(4), NameObject("/P"): page.indirect_reference,
            NameObject("/TU"): TextStringObject(r.label or r.box.tooltip or r.key),
        })
        if r.box.name:
            annot[NameObject(SOURCE_KEY)] = TextStringObject(r.box.name)
        if r.box.kind == "checkbox":
            annot.update({NameObject("/FT"): NameObject("/Btn"), NameObject("/V"): NameObject("/Off"),
                          NameObject("/AS"): NameObject("/Off"),
                          NameObject("/AP"): _checkbox_ap(writer, x1 - x0, bottom - top)})
        else:
            annot.update({NameObject("/FT"): NameObject("/Tx"), NameObject("/DA"): TextStringObject("/Helv 10 Tf 0 g")})
        ref = writer._add_object(annot)
        if "/Annots" not in page:
            page[NameObject("/Annots")] = ArrayObject()
        annots = page["/Annots"].get_object()
        assert isinstance(annots, ArrayObject)
        annots.append(ref)
        fields.append(ref)
    writer._root_object[NameObject("/AcroForm")] = writer._add_object(DictionaryObject({
        NameObject("/Fields"): fields, NameObject("/NeedAppearances"): BooleanObject(True),
        NameObject("/DA"): TextStringObject("/Helv 0 Tf 0 g"),
        NameObject("/DR"): DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/Helv"): helv})}),
    }))
    writer.add_metadata({"/Title": proposal.form_id, "/Creator": "Frontdesk forms add"})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".pdf.part")
    with tmp.open("wb") as fh:
        writer.write(fh)
    tmp.replace(out)
    return out


TEMPLATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")  # a template's id is its file name in a forms folder


def save_template(proposal: Proposal, forms_dir: Path, *, replace: bool = False) -> Path:
    """Write the accepted proposal as ``<forms_dir>/<id>.pdf``: what ``forms add --accept`` and the
    console's form page both do. The id must be a plain name (it becomes a file name) and an existing
    template is not overwritten unless ``replace``."""
    if not TEMPLATE_ID.fullmatch(proposal.form_id):
        raise OnboardingError(f"template id {proposal.form_id!r}: use letters, digits, '_' or '-' (at most 80)")
    out = Path(forms_dir) / f"{proposal.form_id}.pdf"
    if out.exists() and not replace:
        raise ConfigError(f"a template named {proposal.form_id} exists ({out}); use --id or --replace")
    return write_template(proposal, out)


# --------------------------------------------------------------------------------------------------
# The reverse check
# --------------------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    form_id: str
    path: Path
    keys: list[str]
    missing_required: list[str]
    sheet: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form_id, "template": str(self.path), "keys": self.keys,
                "missing_required": self.missing_required, "sheet": str(self.sheet) if self.sheet else None}


def check_template(template_path: Path, vocab: Vocabulary, fields_file: Path, sheet: Path | None) -> CheckReport:
    """Every box of a template with its key printed inside (``sheet``, a PDF to look over), and the keys
    the practice's rules need that the form has no box for."""
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfgen.canvas import Canvas

    from extractors.templates import load_template

    tpl = load_template(template_path)
    keys = sorted(tpl.keys)
    missing = [k for k in required_keys(vocab, fields_file) if k not in tpl.keys]
    report = CheckReport(tpl.form_id, template_path, keys, missing)
    if sheet is None:
        return report
    overlay = io.BytesIO()
    c = Canvas(overlay, invariant=1)
    for tpage in tpl.pages:
        c.setPageSize((tpage.width, tpage.height))
        for w in tpage.widgets:
            x0, top, x1, bottom = w.rect
            c.setStrokeColorRGB(0.85, 0.1, 0.1)
            c.setFillColorRGB(1.0, 0.93, 0.93)
            c.setLineWidth(0.8)
            c.rect(x0, tpage.height - bottom, x1 - x0, bottom - top, stroke=1, fill=1)
            c.setFillColorRGB(0.6, 0.0, 0.0)
            text, size = w.key, 7.0
            if w.kind != "checkbox":  # shrink to fit; a narrow box shows the key's last part(s)
                parts = w.key.split(".")
                for n in range(len(parts)):
                    text, size = ".".join(parts[n:]), 7.0
                    while size > 5.0 and c.stringWidth(text, "Helvetica", size) > (x1 - x0) - 2:
                        size -= 0.5
                    if c.stringWidth(text, "Helvetica", size) <= (x1 - x0) - 2:
                        break
            c.setFont("Helvetica", size)
            if w.kind == "checkbox":  # under the box: the statement is beside it
                c.drawString(x0, tpage.height - bottom - size - 1, text)
            else:
                c.drawString(x0 + 1.5, tpage.height - (top + bottom) / 2 - size * 0.35, text)
        c.showPage()
    c.save()
    overlay.seek(0)
    reader = PdfReader(str(template_path))
    over = PdfReader(overlay)
    writer = PdfWriter()
    for page, op in zip(reader.pages, over.pages, strict=True):
        if "/Annots" in page:
            from pypdf.generic import NameObject

            del page[NameObject("/Annots")]
        new = writer.add_page(page)
        new.merge_page(op)
    sheet.parent.mkdir(parents=True, exist_ok=True)
    with sheet.open("wb") as fh:
        writer.write(fh)
    report.sheet = sheet
    return report

"""Form templates: fillable PDFs whose AcroForm field names are canonical keys.

A template tells us, for any form, which box means what (its widgets) and how to recognise the form
(its printed words). Nothing about a particular form lives in code.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pdfplumber
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject

_TOKEN = re.compile(r"[a-z0-9]{3,}")
SOURCE_KEY = "/FrontdeskSource"  # a widget's original field name, kept by ``frontdesk forms add``


def tokens(text: str) -> set[str]:
    """Words used to recognise a page: lower case, 3+ letters or digits, so noise and box marks drop out."""
    return set(_TOKEN.findall(text.lower()))


@dataclass(frozen=True)
class Widget:
    key: str
    page: int  # 0-based
    rect: tuple[float, float, float, float]  # x0, top, x1, bottom in points, origin top-left (pdfplumber's)
    kind: str  # "text" | "checkbox" | "signature"
    source: str | None = None  # the field's name on the practice's original form (``forms add``), if any


@dataclass
class TemplatePage:
    index: int
    width: float
    height: float
    words: set[str]
    widgets: list[Widget] = field(default_factory=list)


@dataclass
class FormTemplate:
    form_id: str
    path: Path
    pages: list[TemplatePage]

    @property
    def keys(self) -> set[str]:
        return {w.key for p in self.pages for w in p.widgets}

    def widgets(self) -> Iterable[Widget]:
        for p in self.pages:
            yield from p.widgets

    @property
    def aliases(self) -> dict[str, str]:
        """Original field name -> key, for a template written by ``frontdesk forms add`` from a
        practice's own fillable PDF: filled copies of that original still name their fields the old way."""
        return {w.source: w.key for w in self.widgets() if w.source}

    def field_score(self, names: set[str]) -> float:
        """Share of this template's keys that a filled form's field names carry (by key or original name)."""
        keys = self.keys
        if not keys:
            return 0.0
        by_key = {w.key: w.source for w in self.widgets()}
        hits = sum(1 for k in keys if k in names or (by_key.get(k) is not None and by_key[k] in names))
        return hits / len(keys)


def _field_name(annot: DictionaryObject) -> str | None:
    parts: list[str] = []
    node: DictionaryObject | None = annot
    while node is not None:
        t = node.get("/T")
        if t is not None:
            parts.append(str(t))
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return ".".join(reversed(parts)) if parts else None


def _field_type(annot: DictionaryObject) -> str:
    node: DictionaryObject | None = annot
    while node is not None:
        ft = node.get("/FT")
        if ft is not None:
            return {"/Btn": "checkbox", "/Sig": "signature"}.get(str(ft), "text")
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return "text"


def load_template(path: Path) -> FormTemplate:
    reader = PdfReader(str(path))
    pages: list[TemplatePage] = []
    with pdfplumber.open(str(path)) as pdf:
        for i, (page, ppage) in enumerate(zip(reader.pages, pdf.pages, strict=True)):
            height = float(ppage.height)
            widgets: list[Widget] = []
            annots = page.get("/Annots")
            annots = annots.get_object() if annots is not None else ArrayObject()
            for ref in annots:
                annot = ref.get_object()
                if annot.get("/Subtype") != "/Widget":
                    continue
                name = _field_name(annot)
                if not name:
                    continue
                x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
                x0, x1 = sorted((x0, x1))
                y0, y1 = sorted((y0, y1))
                source = annot.get(SOURCE_KEY)
                widgets.append(Widget(name, i, (x0, height - y1, x1, height - y0), _field_type(annot),
                                      str(source) if source is not None else None))
            printed = ppage.extract_text() or ""
            pages.append(TemplatePage(i, float(ppage.width), height, tokens(printed), widgets))
    return FormTemplate(path.stem, path, pages)


class TemplateRegistry:
    """All templates of the configured folders, loaded once per process and reloaded when a file changes."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = [Path(d) for d in dirs]
        self._cache: dict[Path, tuple[float, FormTemplate]] = {}
        self._lock = threading.Lock()

    def templates(self) -> list[FormTemplate]:
        found: list[FormTemplate] = []
        with self._lock:
            for d in self.dirs:
                if not d.is_dir():
                    continue
                for path in sorted(d.glob("*.pdf")):
                    mtime = path.stat().st_mtime
                    cached = self._cache.get(path)
                    if cached is None or cached[0] != mtime:
                        cached = (mtime, load_template(path))
                        self._cache[path] = cached
                    found.append(cached[1])
        return found

    def by_field_names(self, names: set[str],
                       page_words: Callable[[], Sequence[set[str]]] | None = None) -> FormTemplate | None:
        """The template sharing most field names with a filled form (its AcroForm survived). Names
        count by key or by the original name a ``forms add`` template remembers; when several templates
        fit equally (two practices' forms both called their fields Text1...), the printed words decide."""
        scored = [(tpl.field_score(names), tpl) for tpl in self.templates()]
        scored = [(s, t) for s, t in scored if s >= 0.5]
        if not scored:
            return None
        top = max(s for s, _t in scored)
        tied = [t for s, t in scored if s >= top - 0.02]
        if len(tied) == 1 or page_words is None:
            return tied[0]
        words = page_words()

        def printed(tpl: FormTemplate) -> float:
            shares = [max((len(tp.words & w) / len(tp.words) for w in words), default=0.0)
                      for tp in tpl.pages if tp.words]
            return sum(shares) / len(shares) if shares else 0.0

        return max(tied, key=printed)

    def by_words(self, page_words: Sequence[set[str]], threshold: float) -> tuple[FormTemplate | None, list[int | None], float]:
        """Match document pages to a template's pages by printed words.

        Returns the template, for each template page the document page that carries it (None when that
        page is missing), and the score (share of the template's printed words found)."""
        best: tuple[FormTemplate | None, list[int | None], float] = (None, [], 0.0)
        for tpl in self.templates():
            mapping: list[int | None] = []
            scores: list[float] = []
            for tpage in tpl.pages:
                if not tpage.words:
                    mapping.append(None)
                    continue
                page_scores = [len(tpage.words & w) / len(tpage.words) for w in page_words]
                j = max(range(len(page_scores)), key=page_scores.__getitem__) if page_scores else None
                s = page_scores[j] if j is not None else 0.0
                mapping.append(j if s >= threshold else None)
                scores.append(s)
            if not scores:
                continue
            matched = [s for s in scores if s >= threshold]
            score = max(scores) if matched else 0.0
            if score > best[2]:
                best = (tpl, mapping, score)
        if best[2] < threshold:
            return None, [], best[2]
        return best

"""spaCy over words that know where they are on the page.

Cards and letters follow no template, so their fields are found by what the words say (a label, a payer's
name, a cue like "Date of service") and where they sit (a value right of or below its label). Both come
from one :class:`spacy.tokens.Doc` per document, built from OCR or text-layer words: every token carries
its word's box, page, line and OCR confidence as custom extensions (``token._.x0`` ...), so rule
components (SpanRuler, EntityRuler, Matcher) find the words and small geometric helpers here find their
neighbours.

Why a blank English pipeline: the tokenizer, the rule matchers and custom components are all that is
needed and they run in milliseconds. A statistical model is optional: named in the setting
``extraction.spacy_model`` (:mod:`extractors.spacy_model`), it is loaded instead of the blank pipeline
and the project's components are added after its own; its PERSON and ORG entities then name a letter's
patient or sender where the rules found none. Pipelines are built once per process (per model) by the
``cache``-decorated builders in :mod:`extractors.cards` and :mod:`extractors.correspondence`; building
one takes ~0.2 s, reading with one takes a few milliseconds.
"""

from __future__ import annotations

import logging
import re
import statistics
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import spacy
import yaml
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span, Token
from spacy.util import compile_infix_regex, compile_suffix_regex, filter_spans

from extractors import spacy_model
from extractors.names import payer_key

log = logging.getLogger("frontdesk.extractors.nlp")

DEFAULT_PAYERS = Path(__file__).resolve().parents[1] / "config" / "payers.yaml"


# --------------------------------------------------------------------------------------------------
# Words with positions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordBox:
    """One word as a reader saw it. Coordinates in any unit with y growing downwards (pixels for OCR,
    points for a PDF text layer); everything geometric below is relative to the text height, so the unit
    does not matter. ``conf`` is 0..1."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    page: int = 1
    conf: float = 1.0

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def ocr_skew(words: Sequence[Any]) -> float:
    """The page's slope (dy/dx) from tesseract's own lines: a page scanned a degree askew drifts a
    line's height across a table header, enough to split its words into two lines."""
    lines: dict[tuple[int, int, int], list[Any]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    slopes = []
    for ws in lines.values():
        if len(ws) < 3:
            continue
        xs = [w.left + w.width / 2 for w in ws]
        if max(xs) - min(xs) < 20 * statistics.median(w.height for w in ws):
            continue
        ys = [w.top + w.height for w in ws]  # baselines (descenders aside) follow the skew best
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        if den > 0:
            slopes.append(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den)
    return statistics.median(slopes) if len(slopes) >= 3 else 0.0


def words_from_ocr(words: Iterable[Any], page: int, scale: float = 1.0) -> list[WordBox]:
    """From :class:`extractors.ocr.Word` (tesseract TSV rows); ``scale`` maps back to page pixels.
    A skew of the page is taken out of the positions (each word moved, not turned), so lines and
    columns line up as they were printed."""
    words = list(words)
    slope = ocr_skew(words)
    slope = slope if 0.001 < abs(slope) < 0.06 else 0.0
    out = []
    for w in words:
        text = unicodedata.normalize("NFC", w.text.strip())
        if len(text) > 1:
            # A box edge or a letter's stem read as '|' beside a word ('I|', '|Group'); a lone '|' is
            # a separator and stays.
            text = text.strip("|") or text
        if not text:
            continue
        cx, cy = w.left + w.width / 2, w.top + w.height / 2
        dx, dy = slope * cy, -slope * cx  # a small rotation by -atan(slope), as a shift of the word
        out.append(WordBox(text, (w.left + dx) / scale, (w.top + dy) / scale, (w.left + w.width + dx) / scale,
                           (w.top + w.height + dy) / scale, page, max(0.0, min(1.0, float(w.conf) / 100.0))))
    return out


def words_from_pdfplumber(page: Any, page_no: int) -> list[WordBox]:
    """From a pdfplumber page's text layer (points, top-left origin): exact text, full confidence."""
    out = []
    for w in page.extract_words(keep_blank_chars=False, use_text_flow=False):
        text = unicodedata.normalize("NFC", str(w["text"]).strip())
        if text:
            out.append(WordBox(text, float(w["x0"]), float(w["top"]), float(w["x1"]), float(w["bottom"]), page_no))
    return out


def group_lines(words: Sequence[WordBox]) -> list[list[WordBox]]:
    """Words into lines, top to bottom, each line left to right. A word joins the line it overlaps most
    vertically (at least half the smaller height), so a label with descenders and its value in capitals
    stay together, and two columns whose rows drift apart a little are still told apart."""
    lines: list[list[WordBox]] = []
    for page in sorted({w.page for w in words}):
        open_lines: list[tuple[list[WordBox], list[float]]] = []  # words, [y0, y1] band of the line
        for w in sorted((w for w in words if w.page == page), key=lambda w: (w.cy, w.x0)):
            best, best_overlap = None, 0.0
            for i, (_ws, band) in enumerate(open_lines):
                overlap = min(band[1], w.y1) - max(band[0], w.y0)
                need = 0.5 * min(band[1] - band[0], w.height)
                if overlap >= need and overlap > best_overlap:
                    best, best_overlap = i, overlap
            if best is None:
                open_lines.append(([w], [w.y0, w.y1]))
                continue
            ws, band = open_lines[best]
            ws.append(w)
            band[0] = statistics.median(x.y0 for x in ws)
            band[1] = statistics.median(x.y1 for x in ws)
        for ws, _band in sorted(open_lines, key=lambda lb: lb[1][0] + lb[1][1]):
            lines.append(sorted(ws, key=lambda c: c.x0))
    return lines


# --------------------------------------------------------------------------------------------------
# Pipeline basics
# --------------------------------------------------------------------------------------------------

TOKEN_EXTENSIONS = ("x0", "y0", "x1", "y1", "page", "conf", "line")


def _register_extensions() -> None:
    for name in TOKEN_EXTENSIONS:
        if not Token.has_extension(name):
            Token.set_extension(name, default=None)
    if not Doc.has_extension("fields"):
        Doc.set_extension("fields", default=None)  # key -> FieldHit, filled by the field components
    if not Doc.has_extension("notes"):
        Doc.set_extension("notes", default=None)  # list[str]: why a component decided what it did
    if not Span.has_extension("source"):
        Span.set_extension("source", default=None)


_register_extensions()


MODEL_EXCLUDE = ("lemmatizer", "attribute_ruler", "textcat", "textcat_multilabel")  # nothing here uses them


def blank_pipeline(model: str | None = None) -> Language:
    """``spacy.blank("en")``, or the spaCy model ``model`` (a package name or a folder), with a tokenizer
    that also splits what OCR glues together on cards (``Copay$60``, ``ID#W123``, ``ER:$150``) and the
    plural letters write as ``Date(s)``. Raises :class:`extractors.spacy_model.ModelUnavailable` when the
    model cannot be loaded."""
    nlp = _load_model(model) if model else spacy.blank("en")
    if model:
        nlp.add_pipe("set_aside_model_entities")
    tokenizer: Tokenizer = nlp.tokenizer
    infixes = [*(nlp.Defaults.infixes or ()), r"(?<=[A-Za-z])\$(?=\d)", r"(?<=[A-Za-z])#(?=[A-Za-z0-9])",
               r"(?<=[A-Za-z]):(?=[\$\d])", r"\(s\)"]
    tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    # "Date(s):" -> "Date", "(s)", ":" rather than "Date(s", "):".
    tokenizer.suffix_search = compile_suffix_regex([r"\(s\)", *(nlp.Defaults.suffixes or ())]).search
    return nlp


BUILDS: dict[str, int] = {}  # pipeline kind -> how many times it was built in this process


def built_once(kind: str) -> Callable[[Callable[[Path, str | None], Language]], Callable[..., Language]]:
    """Turn a builder ``(payer list, spaCy model) -> Language`` into ``(payers=DEFAULT_PAYERS) ->
    Language`` that builds once per process per payer list and model (the one the settings name, see
    :mod:`extractors.spacy_model`); ``BUILDS[kind]`` counts the builds."""
    def wrap(build: Callable[[Path, str | None], Language]) -> Callable[..., Language]:
        BUILDS.setdefault(kind, 0)

        @cache
        def cached(payers: Path, model: str | None) -> Language:
            BUILDS[kind] += 1
            return build(payers, model)

        def get(payers: Path = DEFAULT_PAYERS) -> Language:
            return cached(Path(payers).resolve(), spacy_model.current())

        get.__doc__ = build.__doc__
        return get
    return wrap


def rule_pipeline(model: str | None, *, spans: tuple[str, str], span_patterns: Callable[[Language], list[dict[str, Any]]],
                  entities: str, entity_patterns: Callable[[Language], list[dict[str, Any]]],
                  match_lower: bool = False) -> Language:
    """The start every reader's pipeline shares: :func:`blank_pipeline` (or the model), hyphenated names
    joined, a SpanRuler ``spans = (name, spans key)`` marking labels or cues, an EntityRuler ``entities``,
    and entities kept within one line. Patterns are built against the pipeline's own tokenizer;
    ``match_lower`` matches phrase patterns without case. The caller adds its own components."""
    nlp = blank_pipeline(model)
    nlp.add_pipe("join_hyphenated")
    attr = {"phrase_matcher_attr": "LOWER"} if match_lower else {}
    ruler = nlp.add_pipe("span_ruler", name=spans[0], config={"spans_key": spans[1], **attr})
    ruler.add_patterns(span_patterns(nlp))  # type: ignore[attr-defined]
    ents = nlp.add_pipe("entity_ruler", name=entities, config=attr)
    ents.add_patterns(entity_patterns(nlp))  # type: ignore[attr-defined]
    nlp.add_pipe("one_line_entities")
    return nlp


def one_line_spans(doc: Doc, key: str) -> list[Span]:
    """The spans of ``doc.spans[key]`` (labels, cues) that stay within one line, overlaps resolved in
    favour of the longer wording ('Member Services' over 'Member'), in reading order."""
    one_line = [s for s in doc.spans.get(key, []) if s[0]._.line == s[-1]._.line]
    return sorted(filter_spans(one_line), key=lambda s: s.start)


def make_doc(nlp: Language, words: Sequence[WordBox]) -> Doc:
    """A Doc whose tokens are the words (split further by the tokenizer), in reading order, each with
    its box. A sub-token gets the share of its word's box that its characters take."""
    tokens: list[str] = []
    spaces: list[bool] = []
    boxes: list[tuple[float, float, float, float, int, float, int]] = []
    for line_no, line in enumerate(group_lines(words)):
        for w in line:
            sub = [t for t in nlp.tokenizer(w.text) if not t.is_space]
            n = max(1, len(w.text))
            for si, t in enumerate(sub):
                a = w.x0 + (w.x1 - w.x0) * t.idx / n
                b = w.x0 + (w.x1 - w.x0) * (t.idx + len(t.text)) / n
                tokens.append(t.text)
                # Words are separated by a space (line ends too); pieces of one word are not.
                spaces.append(True if si == len(sub) - 1 else bool(t.whitespace_))
                boxes.append((a, w.y0, b, w.y1, w.page, w.conf, line_no))
    doc = Doc(nlp.vocab, words=tokens, spaces=spaces)
    for tok, (x0, y0, x1, y1, page, conf, line_no) in zip(doc, boxes, strict=True):
        tok._.x0, tok._.y0, tok._.x1, tok._.y1 = x0, y0, x1, y1
        tok._.page, tok._.conf, tok._.line = page, conf, line_no
    doc._.fields = {}
    doc._.notes = []
    return doc


@Language.component("one_line_entities")
def one_line_entities(doc: Doc) -> Doc:
    """Entities never run across lines: a signer's title above an organisation's name is not one name."""
    doc.ents = [e for e in doc.ents if e[0]._.line is None or e[0]._.line == e[-1]._.line]
    return doc


@Language.component("join_hyphenated")
def join_hyphenated(doc: Doc) -> Doc:
    """'Mary-Kate', 'SMITH-JONES', 'Saint-Pierre' as one token, as they are one name (the tokenizer
    splits hyphens between letters). Only letters on both sides and no space around the hyphen: IDs like
    'XGH-4821' keep their pieces."""
    spans = []
    i = 0
    while i < len(doc) - 2:
        a, dash, b = doc[i], doc[i + 1], doc[i + 2]
        if dash.text == "-" and a.is_alpha and b.is_alpha and not a.whitespace_ and not dash.whitespace_:
            j = i + 2
            while j + 2 < len(doc) and doc[j + 1].text == "-" and doc[j + 2].is_alpha \
                    and not doc[j].whitespace_ and not doc[j + 1].whitespace_:
                j += 2
            spans.append(doc[i:j + 1])
            i = j + 1
        else:
            i += 1
    with doc.retokenize() as retok:
        for sp in spans:
            if sp[0]._.x0 is None:  # a Doc made from plain text (patterns, tests): no positions to keep
                retok.merge(sp)
                continue
            retok.merge(sp, attrs={"_": {"x0": sp[0]._.x0, "y0": min(t._.y0 for t in sp), "x1": sp[-1]._.x1,
                                         "y1": max(t._.y1 for t in sp), "page": sp[0]._.page,
                                         "conf": min(t._.conf for t in sp), "line": sp[0]._.line}})
    return doc


# --------------------------------------------------------------------------------------------------
# Geometry over tokens
# --------------------------------------------------------------------------------------------------


def height(tok: Token) -> float:
    return float(tok._.y1 - tok._.y0)


def cy(tok: Token) -> float:
    return float(tok._.y0 + tok._.y1) / 2


def span_box(span: Span | Sequence[Token]) -> tuple[float, float, float, float]:
    toks = list(span)
    return (min(t._.x0 for t in toks), min(t._.y0 for t in toks), max(t._.x1 for t in toks),
            max(t._.y1 for t in toks))


def text_height(doc: Doc) -> float:
    """The typical height of a word: the unit every distance is measured in."""
    hs = [height(t) for t in doc if t.is_alpha and len(t) > 1]
    return statistics.median(hs) if hs else 1.0


_SKIP = {":", "#", "-", ".", "|", "=", "/", "—", "–", ")", "(", ","}


def _run_from(tokens: list[Token], start: Token, stop: set[int], unit: float, max_gap: float) -> list[Token]:
    """Consecutive tokens of one line from ``start`` rightwards while the gaps stay word-sized."""
    out = [start]
    prev = start
    for t in tokens:
        if t._.x0 <= prev._.x0 or t.i == start.i:
            continue
        if t.i in stop:
            break
        gap = t._.x0 - prev._.x1
        if gap > max_gap * unit:
            break
        out.append(t)
        prev = t
    return out


def right_of(span: Span, stop: set[int], *, max_first_gap: float = 16.0, max_gap: float = 1.1) -> list[Token]:
    """Tokens right of ``span`` on its line: the first within ``max_first_gap`` text heights, the rest
    while they stay one word apart. Leading ``:``/``#`` are skipped; another label stops the run."""
    doc = span.doc
    x0, y0, x1, y1 = span_box(span)
    unit = max(y1 - y0, 1e-6)
    mid = (y0 + y1) / 2
    page = span[0]._.page
    line = sorted((t for t in doc if t._.page == page and t.i not in range(span.start, span.end)
                   and abs(cy(t) - mid) < 0.5 * max(unit, height(t)) and t._.x0 >= x1 - 0.2 * unit),
                  key=lambda t: t._.x0)
    line = [t for t in line if t._.x0 >= x1 - 0.2 * unit]
    while line and line[0].text in _SKIP and line[0].i not in stop:
        line = line[1:]
    if not line or line[0].i in stop or line[0]._.x0 - x1 > max_first_gap * unit:
        return []
    return _run_from(line, line[0], stop, max(unit, height(line[0])), max_gap)


def below(span: Span, stop: set[int], *, max_drop: float = 2.6, max_gap: float = 1.1) -> list[Token]:
    """Tokens on the nearest line below ``span`` that starts under it (values printed under a small
    label). Another label there stops the run."""
    doc = span.doc
    x0, y0, x1, y1 = span_box(span)
    unit = max(y1 - y0, 1e-6)
    page = span[0]._.page
    cands = [t for t in doc if t._.page == page and t._.y0 > y1 - 0.25 * unit
             and cy(t) - y1 < max_drop * max(unit, height(t))
             and x0 - 1.2 * unit <= t._.x0 <= x0 + max(0.6 * (x1 - x0), 1.5 * unit)]
    if not cands:
        return []
    top = min(cands, key=cy)
    # The leftmost word of that line (a descender makes 'Cory' sit lower than 'Hall' beside it).
    first = min((t for t in cands if min(t._.y1, top._.y1) - max(t._.y0, top._.y0) >= 0.5 * min(height(t), height(top))),
                key=lambda t: t._.x0)
    if first.i in stop:
        return []
    mid = cy(first)
    whole = sorted((t for t in doc if t._.page == page and abs(cy(t) - mid) < 0.5 * height(first)),
                   key=lambda t: t._.x0)
    # A value may start left of a label whose first word OCR lost ('Membar Name'): words just left of
    # the first one, one space apart, belong to it too.
    unit_v = height(first)
    i = whole.index(first)
    while i > 0 and whole[i - 1].i not in stop and first._.x0 - whole[i - 1]._.x1 <= max_gap * unit_v:
        i -= 1
        first = whole[i]
    line = [t for t in whole if t._.x0 >= first._.x0]
    return _run_from(line, first, stop, unit_v, max_gap)


def tokens_text(tokens: Sequence[Token]) -> str:
    """The tokens' text with the document's own spacing between them."""
    ordered = sorted(tokens, key=lambda t: t.i)
    parts = [a.text + (" " if (a.whitespace_ or b.i != a.i + 1) else "")
             for a, b in zip(ordered, ordered[1:], strict=False)]
    return ("".join(parts) + (ordered[-1].text if ordered else "")).strip()


@dataclass
class FieldHit:
    """What a component found for one field: the text, how sure OCR was, where, and how it was found."""

    text: str
    conf: float
    page: int | None
    how: str  # e.g. "right of 'Member ID'", "below 'Group No.'", "payer gazetteer"
    tokens: tuple[int, ...] = field(default_factory=tuple)


def hit(tokens: Sequence[Token], how: str, text: str | None = None) -> FieldHit:
    return FieldHit(text if text is not None else tokens_text(tokens), min((float(t._.conf) for t in tokens), default=1.0),
                    tokens[0]._.page if tokens else None, how, tuple(t.i for t in tokens))


# --------------------------------------------------------------------------------------------------
# Payer gazetteer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayerEntry:
    name: str
    aliases: tuple[str, ...]
    payer_id: str | None
    member_id: re.Pattern[str] | None
    kind: str = "payer"

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Gazetteer:
    """``config/payers.yaml``: payer names, spellings, EDI payer IDs and member-ID shapes."""

    def __init__(self, entries: Sequence[PayerEntry]) -> None:
        self.entries = list(entries)
        self.by_name = {e.name: e for e in self.entries}
        self._by_key: dict[str, PayerEntry] = {}
        for e in self.entries:
            for s in e.spellings:
                self._by_key.setdefault(payer_key(s), e)

    def lookup(self, text: str | None) -> PayerEntry | None:
        if not text:
            return None
        return self._by_key.get(payer_key(text))

    def __len__(self) -> int:
        return len(self.entries)


class GazetteerError(ValueError):
    """config/payers.yaml cannot be used; the message names the entry, never document content."""


def load_gazetteer(path: Path = DEFAULT_PAYERS) -> Gazetteer:
    """Parse once per process. A pattern that does not compile is an error: a silent skip would let
    every member ID through unchecked."""
    return _load_gazetteer(Path(path).resolve())


@cache
def _load_gazetteer(path: Path) -> Gazetteer:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GazetteerError(f"{path}: cannot read payer list ({exc.__class__.__name__})") from None
    items = data.get("payers") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise GazetteerError(f"{path}: expected a list 'payers'")
    entries = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not item.get("name"):
            raise GazetteerError(f"{path}: payer entry {i}: expected a mapping with a 'name'")
        pattern = item.get("member_id")
        compiled = None
        if isinstance(pattern, str) and pattern.strip():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise GazetteerError(f"{path}: payer {item['name']}: member_id pattern does not compile ({exc.msg})") from None
        kind = str(item.get("kind", "payer"))
        if kind not in ("payer", "pbm"):
            raise GazetteerError(f"{path}: payer {item['name']}: unknown kind {kind!r}")
        pid = item.get("payer_id")
        entries.append(PayerEntry(str(item["name"]), tuple(str(a) for a in item.get("aliases") or []),
                                  str(pid) if pid not in (None, "") else None, compiled, kind))
    return Gazetteer(entries)


def payer_patterns(nlp: Language, gaz: Gazetteer, label: str = "PAYER") -> list[dict[str, Any]]:
    """EntityRuler token patterns for every spelling (lower case), with the payer's name as the id."""
    patterns = []
    for e in gaz.entries:
        for s in e.spellings:
            toks = [t.lower_ for t in nlp.tokenizer(s) if not t.is_space]
            if toks:
                patterns.append({"label": label, "pattern": [{"LOWER": t} for t in toks], "id": e.name})
    return patterns


def squash(text: str) -> str:
    """Letters and digits only, lower case: how two spellings are compared when OCR split or joined
    words ('BlueCross BlueShield' vs 'Blue Cross Blue Shield')."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum())


def levenshtein(a: str, b: str, limit: int) -> int:
    """Edit distance, giving up (returning ``limit + 1``) once it cannot be within ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


# --------------------------------------------------------------------------------------------------
# Optional statistical model
# --------------------------------------------------------------------------------------------------


def _load_model(name: str) -> Language:
    """A fresh copy of the model (each pipeline adds its own components to it)."""
    why = spacy_model.problem(name)
    if why is not None:
        raise spacy_model.ModelUnavailable(why)
    try:
        nlp = spacy.load(name, exclude=list(MODEL_EXCLUDE))
    except (OSError, ImportError, ValueError, KeyError) as exc:
        raise spacy_model.ModelUnavailable(
            f"spaCy model {name!r} ({spacy_model.SETTING}) cannot be loaded ({exc.__class__.__name__}); "
            f"install a version for spaCy {spacy.__version__} or leave the setting empty") from None
    log.info("spaCy pipelines built on model %s", name)
    return nlp


MODEL_ENTS = "model_ents"


@Language.component("set_aside_model_entities")
def set_aside_model_entities(doc: Doc) -> Doc:
    """A model's own entities (its DATE, ORG, PERSON...) moved to ``doc.spans["model_ents"]``, so the
    project's rules see only the entities they make themselves and read the same with or without a model;
    readers consult the model's where the rules found nothing."""
    doc.spans[MODEL_ENTS] = list(doc.ents)
    doc.ents = ()
    return doc


def model_entities(doc: Doc) -> list[Span]:
    return list(doc.spans[MODEL_ENTS]) if MODEL_ENTS in doc.spans else []

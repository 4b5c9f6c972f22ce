"""Read every field of a registered page from its own zone: text by OCR, checkboxes and signatures by ink.

The page has been warped into its template's frame, so a widget rectangle of the template is the zone of
its field. Each zone is cleaned before anything looks at it: the template's own ink (box lines, hints) is
dropped out, long rules that registration left behind are erased, and specks are removed. A zone with no
ink left is blank, and costs no OCR at all.

OCR is batched: the cleaned text of all zones that share settings is pasted onto one tall strip with white
gaps, read in one tesseract call (start-up costs ~0.1 s a call), and the words are sent back to their
zones by their position. Strips run side by side on the machine's cores. A value that fails its type's
format is read again alone with other settings before it is given up.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import cv2
import numpy as np

from extractors import decode, ocr
from extractors.base import RawField, RawFlag
from extractors.images import WORK_DPI
from extractors.register import TemplatePageView
from extractors.templates import Widget

PT = WORK_DPI / 72  # pixels per point
INK_LEVEL = 150  # darker than this (after normalising paper to white) is ink
MIN_COMPONENT = 10  # pixels; smaller blobs are paper or fax noise
BLANK_INK = 45  # a text zone with less ink than this (pixels) is blank
STRIP_GAP = 36
STRIP_PAD = 24

DIGITS_WHITELIST = "0123456789/-.() "
SECOND_OPINION_BELOW = 0.90  # values read with less confidence are read again by a second model
AGREED_CONF = 0.90
DISAGREED_CONF = 0.6
NUMERIC_TYPES = frozenset({"date", "phone", "zip", "npi"})

Checker = Callable[[str, str], bool]  # (key, raw text) -> does it fit the field's type


@dataclass
class Zone:
    key: str
    ftype: str
    image: np.ndarray  # cleaned crop, white background


@dataclass
class Reading:
    text: str
    conf: float  # 0..1


@dataclass
class PageFields:
    fields: dict[str, RawField] = field(default_factory=dict)
    flags: list[RawFlag] = field(default_factory=list)
    hand_keys: list[str] = field(default_factory=list)  # text fields the handwriting engine read too
    doubted: float = 0.0  # share of filled text fields tesseract doubted: high on handwriting

    @property
    def hand_fields(self) -> int:
        return len(self.hand_keys)


HANDWRITTEN_SHARE = 0.4  # a page where this share of filled text fields read doubtfully is handwritten
HAND_MIN_ZONES = 3
HAND_GROW_LEFT = 0.45  # of the box height: people start writing on or before the box's left line
HAND_GROW_RIGHT = 0.3  # ... and run over its right one


def doubted_share(first_conf: dict[str, float]) -> float:
    """Share of the page's filled text fields tesseract doubted (see :func:`looks_handwritten`)."""
    if not first_conf:
        return 0.0
    return sum(c < SECOND_OPINION_BELOW for c in first_conf.values()) / len(first_conf)


def looks_handwritten(first_conf: dict[str, float]) -> bool:
    """Tesseract reads print with high confidence and handwriting with low: the share of filled fields it
    doubted tells a handwritten page (mostly 0.67-1.0 on generated forms; neat hands from 0.23) from a
    printed one (0.06-0.45, faxes highest); neat handwriting below the line is caught field by field by
    :func:`outside_box` and tesseract's own doubts. Printed pages never pay for the second engine, and their reading is unchanged: checking
    their doubtful fields with it sent more to review (fax 6 % -> 13 %) and caught no silent error."""
    if len(first_conf) < HAND_MIN_ZONES:
        return False
    return doubted_share(first_conf) >= HANDWRITTEN_SHARE


def hand_crop(page: np.ndarray, drop: np.ndarray, w: Widget) -> np.ndarray | None:
    """A generous crop for handwriting: past the box's left line (where writing often starts) and its right
    one (where it runs over), the form's own ink dropped out. Not taller than the box, so that a box line
    left over after registration still spans the crop's height and is erased as a rule."""
    x0, y0, x1, y1 = _rect_px(w)
    h = y1 - y0
    rect = _clip((x0 - round(HAND_GROW_LEFT * h), y0 - 4, x1 + round(HAND_GROW_RIGHT * h), y1 + 4), page.shape)
    crop, mask, total, _ = zone_ink(page, drop, rect)
    if total < BLANK_INK:
        return None
    img = clean_text_crop(crop, mask)
    if img is None:
        return None
    return cv2.copyMakeBorder(img, 8, 8, 8, 8, cv2.BORDER_CONSTANT, value=255)


def hand_crop_raw(page: np.ndarray, w: Widget) -> np.ndarray:
    """The same place as the scanner saw it, lines and all: writing that sits on the box's bottom line loses
    its strokes along the line when the form's ink is dropped out (an E becomes an F, a J a T), so a third
    reading of the uncleaned box catches what the cleaned one cannot see."""
    x0, y0, x1, y1 = _rect_px(w)
    h = y1 - y0
    rx0, ry0, rx1, ry1 = _clip((x0 - round(HAND_GROW_LEFT * h), y0 + 3, x1 + round(HAND_GROW_RIGHT * h),
                                y1 + round(0.15 * h)), page.shape)
    crop = page[ry0:ry1, rx0:rx1].copy()
    # The box's side lines would be read as a "1" or "|": columns dark over most of the height are paper.
    dark = crop < INK_LEVEL
    cols = np.flatnonzero(dark.sum(axis=0) > 0.6 * crop.shape[0])
    for c in cols:
        crop[:, max(0, c - 1):c + 2] = 255
    return cv2.copyMakeBorder(crop, 8, 8, 8, 8, cv2.BORDER_CONSTANT, value=255)


def outside_box(page: np.ndarray, drop: np.ndarray, w: Widget) -> bool:
    """Is there writing just left of the box, or just right of it? People start on or before the box's left
    line and run over its right one; the zone crop then misses a letter, and tesseract reads the rest with
    confidence ("onald" for "ronald"). Print never leaves its box, so this costs printed pages nothing."""
    x0, y0, x1, y1 = _rect_px(w)
    h = y1 - y0
    for rect in ((x0 - round(HAND_GROW_LEFT * h), y0 + 4, x0 - 4, y1 - 4),
                 (x1 + 4, y0 + 4, x1 + round(HAND_GROW_RIGHT * h), y1 - 4)):
        rect = _clip(rect, page.shape)
        if rect[2] - rect[0] < 4 or rect[3] - rect[1] < 4:
            continue
        _, _, total, _ = zone_ink(page, drop, rect, erase_rules=False)
        if total >= BLANK_INK:
            return True
    return False


def _hand_pass(page: np.ndarray, drop: np.ndarray, widgets: Sequence[Widget], readings: dict[str, Reading],
               zones: dict[str, Zone], first_conf: dict[str, float], check: Checker) -> dict[str, decode.Choice]:
    """On a handwritten page, every filled text field is read again by the handwriting engine (on two crops:
    cleaned, and as scanned), and its value is decided from the three readings and the field's type
    (:func:`extractors.decode.decide`)."""
    todo = [k for k in readings if k in zones] if looks_handwritten(first_conf) else []
    engine = ocr.hand_engine() if todo else None
    if engine is None:
        return {}
    by_key = {w.key: w for w in widgets}
    out: dict[str, decode.Choice] = {}
    for k in todo:
        z, r = zones[k], readings[k]
        if k not in by_key:
            continue
        img = hand_crop(page, drop, by_key[k])
        try:
            second = engine.read(img if img is not None else z.image)
            third = engine.read(hand_crop_raw(page, by_key[k]))
        except ocr.OcrError:
            second = third = ocr.HandReading("", 0.0)
        choice = decode.decide(z.ftype, [decode.Candidate(r.text, r.conf, "tesseract"),
                                         decode.Candidate(second.text, second.score, engine.name, second.weakest),
                                         decode.Candidate(third.text, third.score, engine.name + "-raw",
                                                          third.weakest)],
                               key=k)
        if z.ftype in WORDY_TYPES and img is not None and choice.text:
            spaced = _read_words(engine, img)
            if spaced:
                fixed = respace(choice.text, spaced)
                if fixed is not None:
                    choice = decode.Choice(fixed, choice.conf, choice.reason)
            if " " not in choice.text:
                # Joined, where another reading of as many letters breaks it into words: its breaks.
                for other in (second.text, third.text, r.text):
                    fixed = break_like(choice.text, other)
                    if fixed is not None:
                        choice = decode.Choice(fixed, choice.conf, choice.reason)
                        break
        if choice.reason is None and choice.text and not check(k, choice.text):
            choice = decode.Choice(choice.text, decode.DOUBT, "the reading does not fit the field")
        out[k] = choice
    return out


_JOINERS = ("-", "'", "’")
WORDY_TYPES = frozenset({"text", "name"})  # street, city, payer, employer, names: values of several words
WORD_GAP = 0.45  # of the writing's height: a blank run of columns this wide parts two words
MAX_WORDS = 8


def word_spans(img: np.ndarray) -> list[tuple[int, int]]:
    """Left and right edge of each written word in a cleaned crop (white paper, dark ink), left to right:
    columns without ink, at least :data:`WORD_GAP` of the writing's height wide, part words. Letters of
    one word are written closer than that, even by hand."""
    ink = img < INK_LEVEL
    rows = np.flatnonzero(ink.any(axis=1))
    cols: list[bool] = np.asarray(ink.any(axis=0), dtype=bool).tolist()
    if rows.size == 0 or not any(cols):
        return []
    gap = max(4, round(WORD_GAP * (rows[-1] - rows[0] + 1)))
    spans: list[tuple[int, int]] = []
    start: int | None = None
    blank = 0
    for x, inked in enumerate(cols):
        if inked:
            if start is None:
                start = x
            elif blank >= gap:
                spans.append((start, x - blank))
                start = x
            blank = 0
        elif start is not None:
            blank += 1
    if start is not None:
        spans.append((start, len(cols) - blank))
    return spans


SLANTS = tuple(x / 10 for x in range(-6, 7))  # shears tried: up to ~30 degrees either way


def deslant(img: np.ndarray) -> np.ndarray:
    """The crop sheared upright: slanted (cursive, italic) writing leaves no blank column between words, as
    each letter's top overhangs the next one's foot. The shear that leaves the most blank columns between
    the first and last ink is the writing's slant."""
    ys, xs = np.nonzero(img < INK_LEVEL)
    if xs.size == 0:
        return img
    yc = (ys.min() + ys.max()) / 2
    best, best_blank = 0.0, -1
    for s in SLANTS:
        sx = np.round(xs - s * (ys - yc)).astype(np.int64)
        cols = np.bincount(sx - sx.min())
        blank = int((cols == 0).sum())
        if blank > best_blank:
            best, best_blank = s, blank
    if best == 0.0:
        return img
    h, w = img.shape
    pad = int(abs(best) * h) + 2
    m = np.array([[1, -best, best * yc + pad], [0, 1, 0]], dtype=np.float32)
    out: np.ndarray = cv2.warpAffine(img, m, (w + 2 * pad, h), flags=cv2.INTER_LINEAR, borderValue=255)
    return out


def _read_words(engine: ocr.HandEngine, img: np.ndarray) -> str | None:
    """The crop read word by word (each word alone, joined left to right with one space), or None when it
    holds one word or too many to be a field's value. An engine reading a whole line of handwriting drops
    the space between words it writes close together, and now and then reads them out of order."""
    img = deslant(img)
    spans = word_spans(img)
    if not 2 <= len(spans) <= MAX_WORDS:
        return None
    words: list[str] = []
    for x0, x1 in spans:
        crop = cv2.copyMakeBorder(img[:, max(0, x0 - 2):x1 + 2], 0, 0, 8, 8, cv2.BORDER_CONSTANT, value=255)
        try:
            text = engine.read(crop).text.strip()
        except ocr.OcrError:
            return None
        if not text:
            return None
        words.append(text)
    return " ".join(words)


def break_like(text: str, other: str) -> str | None:
    """``text`` (one run of letters) broken into words where ``other``, a reading of as many letters and
    mostly the same ones, breaks; None when the two are not readings of the same letters."""
    words = other.split()
    if len(words) < 2 or len("".join(words)) != len(text):
        return None
    if difflib.SequenceMatcher(None, text.casefold(), "".join(words).casefold()).ratio() < 0.7:
        return None
    out, i = [], 0
    for w in words:
        out.append(text[i:i + len(w)])
        i += len(w)
    return " ".join(out)


def respace(text: str, spaced: str) -> str | None:
    """``text`` with the word breaks of ``spaced``, another reading of the same letters: where the two hold
    the same letters (case aside) and ``spaced`` no fewer words, the breaks are moved over; where they hold the same words in another
    order, ``text``'s words are put in ``spaced``'s order. None when they are not the same letters, so a
    reading is never changed, only spaced or ordered."""
    flat = "".join(text.split())
    if flat.casefold() == "".join(spaced.split()).casefold() and len(spaced.split()) >= len(text.split()):
        out: list[str] = []
        i = 0
        for word in spaced.split():
            part = flat[i:i + len(word)]
            if out and (out[-1].endswith(_JOINERS) or part.startswith(_JOINERS)):
                out[-1] += part  # Saint-Pierre, O'Neil: a hyphen or an apostrophe joins, however far apart
            else:
                out.append(part)
            i += len(word)
        fixed = " ".join(out)
        return fixed if fixed != text else None
    mine, theirs = text.split(), spaced.split()
    if len(mine) == len(theirs) >= 2 and sorted(w.casefold() for w in mine) == sorted(w.casefold() for w in theirs):
        pool = list(mine)
        ordered = []
        for w in theirs:
            j = next(i for i, m in enumerate(pool) if m.casefold() == w.casefold())
            ordered.append(pool.pop(j))
        fixed = " ".join(ordered)
        return fixed if fixed != text else None
    return None


def normalise_paper(gray: np.ndarray) -> np.ndarray:
    """Stretch so paper is white and ink is black, whatever the scanner's tone or the fax's bits."""
    sample = gray[::7, ::7]
    paper = float(np.percentile(sample, 92))
    ink = float(np.percentile(sample, 0.5))
    if paper - ink < 40:  # a flat page (blank or all black): leave it alone
        return gray
    lut = np.clip((np.arange(256, dtype=np.float32) - ink) / (paper - ink) * 255.0, 0, 255).astype(np.uint8)
    return cv2.LUT(gray, lut)


def dropout_mask(view: TemplatePageView) -> np.ndarray:
    """The template's printed ink, widened to absorb registration error: pixels never read as a value."""
    cached = getattr(view, "_dropout", None)
    if cached is None:
        cached = cv2.dilate(view.ink.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        view._dropout = cached  # type: ignore[attr-defined]
    return cached


def _rect_px(w: Widget, grow: float = 0.0) -> tuple[int, int, int, int]:
    x0, top, x1, bottom = w.rect
    return (round(x0 * PT - grow), round(top * PT - grow), round(x1 * PT + grow), round(bottom * PT + grow))


def _clip(r: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    return max(0, r[0]), max(0, r[1]), min(w, r[2]), min(h, r[3])


def _erase_rules(ink: np.ndarray) -> np.ndarray:
    """Erase straight lines spanning most of the zone (a box edge that registration left a little off):
    rows inked over half the width, columns inked over 80% of the height, with a pixel either side."""
    h, w = ink.shape
    rows = np.flatnonzero(ink.sum(axis=1) > 0.5 * w)
    cols = np.flatnonzero(ink.sum(axis=0) > 0.8 * h)
    if rows.size == 0 and cols.size == 0:
        return ink
    out = ink.copy()
    for r in rows:
        out[max(0, r - 1):r + 2, :] = False
    for c in cols:
        out[:, max(0, c - 1):c + 2] = False
    return out


def _components(ink: np.ndarray, min_area: int = MIN_COMPONENT) -> tuple[np.ndarray, int, int]:
    """Keep blobs big enough to be pen strokes. Returns (mask, ink pixels, largest blob)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(ink, dtype=bool), 0, 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= min_area
    mask = keep[labels]
    kept = areas[keep[1:]]
    return mask, int(kept.sum()), int(kept.max()) if kept.size else 0


def zone_ink(page: np.ndarray, drop: np.ndarray, rect: tuple[int, int, int, int],
             erase_rules: bool = True) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The value ink inside ``rect``: (gray crop, ink mask, ink pixels, largest blob)."""
    x0, y0, x1, y1 = _clip(rect, page.shape)
    crop = page[y0:y1, x0:x1]
    ink = (crop < INK_LEVEL) & ~drop[y0:y1, x0:x1]
    if erase_rules and ink.size:
        ink = _erase_rules(ink)
    mask, total, largest = _components(ink)
    return crop, mask, total, largest


def clean_text_crop(crop: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """White everywhere but the value's strokes (with their anti-aliased edges), cut to the ink."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    clean = np.where(grown, crop, 255).astype(np.uint8)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return clean[y0:y1, x0:x1]


def read_checkbox(page: np.ndarray, drop: np.ndarray, w: Widget, page_no: int) -> tuple[RawField, RawFlag | None]:
    """Checked / unchecked by the share of the box's inside that carries ink (the template's own ink is
    dropped out, so the blank form scores ~0); in between is uncertain and sent to review."""
    x0, y0, x1, y1 = _rect_px(w)
    inset = max(3, round((x1 - x0) * 0.12))
    _, mask, total, _ = zone_ink(page, drop, (x0 + inset, y0 + inset, x1 - inset, y1 - inset), erase_rules=False)
    area = max(1, mask.size)
    share = total / area
    if share >= 0.035:
        return RawField("X", min(1.0, 0.85 + share), page_no), None
    if share <= 0.012:
        return RawField(None, 0.95, page_no), None
    value = "X" if share >= 0.022 else None
    return RawField(value, 0.5, page_no), RawFlag("low_confidence", "warning",
                                                  "a checkbox is faintly marked; please check it", w.key)


def read_signature(page: np.ndarray, drop: np.ndarray, w: Widget, page_no: int) -> tuple[RawField, RawFlag | None]:
    """Signed when the zone holds pen strokes the blank form does not: enough ink in sizeable blobs."""
    x0, y0, x1, y1 = _rect_px(w)
    _, _mask, total, largest = zone_ink(page, drop, (x0 + 4, y0 + 4, x1 - 4, y1 - 4))
    if total >= 400 and largest >= 120:
        return RawField("signed", 0.97, page_no), None
    if total < 80:
        return RawField(None, 0.95, page_no), None
    return RawField("signed" if total >= 200 else None, 0.5, page_no), RawFlag(
        "low_confidence", "warning", "the signature box holds a faint or small mark; please check it", w.key)


def _strip(zones: Sequence[Zone]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    width = max(z.image.shape[1] for z in zones) + 2 * STRIP_PAD
    height = sum(z.image.shape[0] for z in zones) + STRIP_GAP * (len(zones) - 1) + 2 * STRIP_PAD
    strip = np.full((height, width), 255, np.uint8)
    spans = []
    y = STRIP_PAD
    for z in zones:
        h, w = z.image.shape
        strip[y:y + h, STRIP_PAD:STRIP_PAD + w] = z.image
        spans.append((y, y + h))
        y += h + STRIP_GAP
    return strip, spans


def _join(words: Sequence[ocr.Word]) -> Reading:
    if not words:
        return Reading("", 0.0)
    words = sorted(words, key=lambda w: w.left)
    return Reading(" ".join(w.text for w in words), min(w.conf for w in words) / 100.0)


def read_strip(zones: Sequence[Zone], *, eng: ocr.OcrEngine, whitelist: str | None, timeout: float,
               lang: str | None = None) -> list[Reading]:
    """One tesseract call for many zones; each word goes back to the zone whose band holds its centre."""
    strip, spans = _strip(zones)
    words = ocr.run(strip, eng=eng, psm=6, lang=lang, whitelist=whitelist, timeout=timeout)
    per: list[list[ocr.Word]] = [[] for _ in zones]
    for word in words:
        for i, (a, b) in enumerate(spans):
            if a - STRIP_GAP / 2 <= word.cy < b + STRIP_GAP / 2:
                per[i].append(word)
                break
    return [_join(ws) for ws in per]


def read_single(zone: Zone, *, eng: ocr.OcrEngine, lang: str | None, whitelist: str | None, scale: float,
                timeout: float) -> Reading:
    """One zone on its own as a single line: the second opinion for a value that failed its format."""
    img = zone.image
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    padded = cv2.copyMakeBorder(img, STRIP_PAD, STRIP_PAD, STRIP_PAD, STRIP_PAD, cv2.BORDER_CONSTANT, value=255)
    return _join(ocr.run(padded, eng=eng, psm=7, lang=lang, whitelist=whitelist, timeout=timeout))


# In an identifier, a zero at the start or next to a letter (or the letter O next to a digit) is where O and 0, which
# look alike on a degraded scan, are most often confused; no model can tell them apart there.
_AMBIGUOUS_ID = re.compile(r"^[0O]|(?<=[A-Z])[0O]|[0O](?=[A-Z])|(?<=\d)O|O(?=\d)")
_SMALL_WORDS = frozenset({"of", "the", "and", "de", "del", "la", "le", "van", "von", "der", "den", "da", "do",
                          "dos", "das", "di", "y", "e", "on", "at", "in", "by", "apt", "ste", "st"})
_FIXES = str.maketrans({"ı": "i"})  # a fax loses the dot of an i; dotless i is not a letter of US forms


def tidy(text: str, ftype: str) -> tuple[str, float]:
    """Undo OCR habits that no patient writes, and say how much to trust the rest (a factor on the
    confidence). A name word starting in lower case is a misread capital (Ł read as t), not a name."""
    text = text.translate(_FIXES)
    factor = 1.0
    if ftype == "name" and any(w[:1].islower() for w in text.replace("-", " ").split()):
        factor = 0.5
        # The left edge of the box read as a letter before the capital: "tŁukasiewicz", "lOrtiz".
        text = re.sub(r"(?<![\w'])[a-z](?=[A-ZÀ-ÖØ-ÞĀ-Ž])", "", text)
    if ftype == "name":
        # An echoed diaeresis (Anaïs read as Anaiïs or Anaïäs): the echo taken out, and a person looks.
        repaired = decode.stray_mark(text)
        if repaired is not None:
            text, factor = repaired, min(factor, 0.5)
        # No name has a digit: a zero at the start of a name word is the letter (0'Connor is O'Connor).
        text = re.sub(r"(?<![\w'])0(?=['’]?[A-Za-z])", "O", text)
        # The Latin model's rendering of a Vietnamese letter with two marks (Nguyễn as Nguyêñ, Trần as Trâñ,
        # Trâħ): no name spells a marked vowel before ñ, nor uses ħ.
        if re.search(r"[âêôăơưÂÊÔĂƠƯ][ñÑ]|[ħĦ]", text):
            factor = min(factor, 0.5)
    if ftype == "text":
        # "44845 Teresa field": where every other word is capitalised, one that is not is likely a misread.
        words = [w for w in text.split() if w[:1].isalpha() and w.lower() not in _SMALL_WORDS]
        lower = [w for w in words if w[:1].islower()]
        if len(words) >= 2 and len(lower) == 1:
            factor = min(factor, 0.75)
    if ftype == "id" and _AMBIGUOUS_ID.search(text.upper()):
        factor = min(factor, 0.75)
    return text, factor


def _same(a: str, b: str, ftype: str) -> bool:
    if ftype in ("id", "phone", "zip", "date", "npi"):
        return "".join(ch for ch in a.upper() if ch.isalnum()) == "".join(ch for ch in b.upper() if ch.isalnum())
    return " ".join(a.split()) == " ".join(b.split())


def _second_opinion(readings: dict[str, Reading], zones: dict[str, Zone], *, eng: ocr.OcrEngine,
                    timeout: float) -> None:
    """Read the doubtful values again with an independently trained model. Two models rarely make the
    same mistake: agreement lifts a middling confidence, disagreement sends the value to review."""
    doubtful = [zones[k] for k, r in readings.items() if r.text and r.conf < SECOND_OPINION_BELOW]
    if not doubtful:
        return
    numeric = [z for z in doubtful if z.ftype in NUMERIC_TYPES]
    other = [z for z in doubtful if z.ftype not in NUMERIC_TYPES]
    jobs = [(g, ocr.pool().submit(read_strip, g, eng=eng, whitelist=wl, timeout=timeout, lang=eng.alt_lang))
            for g, wl in ((numeric, DIGITS_WHITELIST), (other, None)) if g]
    for group, fut in jobs:
        for z, alt in zip(group, fut.result(), strict=True):
            first = readings[z.key]
            if _same(first.text, alt.text.translate(_FIXES), z.ftype):
                # Agreement lifts a middling confidence, except where both models share a blind spot:
                # letters and digits of the same shape in identifiers (O/0, I/1, S/5), and a reading
                # already marked suspicious.
                if z.ftype != "id" and tidy(first.text, z.ftype)[1] == 1.0:
                    readings[z.key] = Reading(first.text, max(first.conf, AGREED_CONF))
            else:
                readings[z.key] = Reading(first.text, min(first.conf, DISAGREED_CONF))


def _names_again(names: Sequence[Zone], *, eng: ocr.OcrEngine, timeout: float) -> list[Reading]:
    """Every name read again with the name model (Vietnamese + Latin)."""
    assert eng.name_lang
    return read_strip(names, eng=eng, whitelist=None, timeout=timeout, lang=eng.name_lang)


_VIET_MARKS = frozenset("\u0309\u0323\u031b\u0306")  # hook above, dot below, horn, breve


def _fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch)).lower()


def _vietnamese(text: str) -> bool:
    """Marks only Vietnamese puts on Latin letters: a hook, a dot below, a horn, a breve, đ, or two marks
    on one letter (ầ, ễ)."""
    decomposed = unicodedata.normalize("NFD", text)
    if "đ" in text.lower() or any(ch in _VIET_MARKS for ch in decomposed):
        return True
    run = 0
    for ch in decomposed:
        run = run + 1 if unicodedata.combining(ch) else 0
        if run >= 2:
            return True
    return False


def _merge_names(readings: dict[str, Reading], names: Sequence[Zone], again: Sequence[Reading]) -> None:
    """The Latin model turns Thảo into Thåo and Nguyễn into Nguyêñ, or drops the marks altogether, with a
    confidence that looks fine. Where the Vietnamese model sees Vietnamese marks on the same letters and
    the two disagree, a person checks the name. Neither reading is taken over the other: the Vietnamese
    model also puts its marks on European names (Jürgen as Jủrgen), and reads Latin names worse (l as L)."""
    for z, alt in zip(names, again, strict=True):
        first = readings[z.key]
        text, _factor = tidy(alt.text, z.ftype)
        if not text or text == first.text or not _vietnamese(text) or _fold(text) != _fold(first.text):
            continue
        readings[z.key] = Reading(first.text, min(first.conf, DISAGREED_CONF))


def _zero_tails(zones: Sequence[Zone], readings: Sequence[Reading], *, eng: ocr.OcrEngine,
                timeout: float) -> list[Reading | None]:
    """Both OCR models read the Q of an ID ("595Q7677") as a zero, sure of it, and no format can tell. The
    glyph can: a Q's tail reaches below the line the other characters stand on; a zero's does not. One
    tesseract call with character boxes for all the zones; for each, the reading with such zeros made Q
    (and sent to a person), or None when nothing changes."""
    strip, spans = _strip(zones)
    glyphs = ocr.run_glyphs(strip, eng=eng, psm=6, timeout=timeout)
    out: list[Reading | None] = []
    for (a, b), reading in zip(spans, readings, strict=True):
        mine = [g for g in glyphs if g.text.isalnum() and a - STRIP_GAP / 2 <= (g.top + g.bottom) / 2 < b + STRIP_GAP / 2]
        mine.sort(key=lambda g: g.left)
        out.append(_q_for_zero(mine, reading))
    return out


def _q_for_zero(glyphs: Sequence[ocr.Glyph], reading: Reading) -> Reading | None:
    wanted = [ch for ch in reading.text if ch.isalnum()]
    if len(glyphs) < 3 or [g.text for g in glyphs] != wanted:
        return None  # a different reading: not this check's business
    base = float(np.median([g.bottom for g in glyphs]))
    height = float(np.median([g.bottom - g.top for g in glyphs]))
    tails = {i for i, g in enumerate(glyphs) if g.text == "0" and g.bottom - base > max(2.0, 0.1 * height)}
    if not tails:
        return None
    out, n = [], 0
    for ch in reading.text:
        if ch.isalnum():
            out.append("Q" if n in tails else ch)
            n += 1
        else:
            out.append(ch)
    return Reading("".join(out), min(reading.conf, DISAGREED_CONF))


def damaged(page: np.ndarray, view: TemplatePageView, drop: np.ndarray, w: Widget) -> bool:
    """Is the scan unreliable around this field? The box's own printed border must show, and the white
    margin around the box must be white: a torn, smeared or corrupt image (a bad fax line, a damaged
    strip) fails one or the other, and whatever was read inside is not to be trusted."""
    x0, y0, x1, y1 = _clip(_rect_px(w, grow=16), page.shape)
    crop = page[y0:y1, x0:x1]
    if crop.size == 0:
        return True
    ix0, iy0, ix1, iy1 = _rect_px(w)
    ring = np.zeros(crop.shape, bool)
    ring[max(0, iy0 - y0 - 4):iy1 - y0 + 4, max(0, ix0 - x0 - 4):ix1 - x0 + 4] = True
    inner = np.zeros(crop.shape, bool)
    inner[iy0 - y0 + 4:iy1 - y0 - 4, ix0 - x0 + 4:ix1 - x0 - 4] = True
    border = view.ink[y0:y1, x0:x1] & ring & ~inner
    if border.sum() < 20:
        return False  # the form prints no box here: nothing to check against
    darkest = cv2.erode(crop, np.ones((3, 3), np.uint8))  # tolerate a pixel of registration error
    shown = float((darkest[border] < 190).mean())
    margin = ~ring & ~drop[y0:y1, x0:x1]
    clutter = float((crop[margin] < INK_LEVEL).mean()) if margin.any() else 0.0
    return shown < 0.6 or clutter > 0.08


def read_fields(page: np.ndarray, view: TemplatePageView, widgets: Sequence[Widget], types: dict[str, str],
                check: Checker, *, page_no: int, eng: ocr.OcrEngine, timeout: float) -> PageFields:
    """Every widget of one registered page (``page`` is already in the template's frame)."""
    out = PageFields()
    page = normalise_paper(page)
    drop = dropout_mask(view)
    text_zones: list[Zone] = []
    hurt = {w.key for w in widgets if damaged(page, view, drop, w)}
    for key in sorted(hurt):
        out.flags.append(RawFlag("low_confidence", "warning", "the scan is damaged or unclear around this field; "
                                 "please check it", key))
    for w in widgets:
        ftype = types.get(w.key, "text")
        if w.kind == "checkbox" or ftype == "checkbox":
            rf, flag = read_checkbox(page, drop, w, page_no)
        elif w.kind == "signature" or ftype == "signature":
            rf, flag = read_signature(page, drop, w, page_no)
        else:
            crop, mask, total, _ = zone_ink(page, drop, _rect_px(w, grow=6))
            image = clean_text_crop(crop, mask) if total >= BLANK_INK else None
            if image is None:
                out.fields[w.key] = RawField(None, 0.95, page_no)
            else:
                text_zones.append(Zone(w.key, ftype, image))
            continue
        out.fields[w.key] = rf
        if flag:
            out.flags.append(flag)

    # As many strips as cores, balanced by ink area (recognition time follows the amount of text). Digits
    # go without a whitelist here: the LSTM reads them well, and a whitelist can blank whole words; a
    # value that fails its format is read again below, numbers then with the whitelist.
    workers = max(1, ocr.pool()._max_workers)
    strips: list[list[Zone]] = [[] for _ in range(min(workers, len(text_zones)))]
    loads = [0] * len(strips)
    for z in sorted(text_zones, key=lambda z: -z.image.size):
        i = loads.index(min(loads))
        strips[i].append(z)
        loads[i] += z.image.size
    jobs: list[tuple[list[Zone], Future[list[Reading]]]] = [
        (g, ocr.pool().submit(read_strip, g, eng=eng, whitelist=None, timeout=timeout)) for g in strips if g]
    readings: dict[str, Reading] = {}
    zones_by_key = {z.key: z for z in text_zones}
    for group, fut in jobs:
        for z, r in zip(group, fut.result(), strict=True):
            readings[z.key] = r

    first_conf = {k: r.conf for k, r in readings.items()}
    for k, r in readings.items():
        text, factor = tidy(r.text, zones_by_key[k].ftype)
        if not eng.knows_diacritics and zones_by_key[k].ftype == "name":
            factor = min(factor, 0.6)  # a model without ü, ç, ë would strip them: a person must look
        readings[k] = Reading(text, r.conf * factor)

    # Second opinions for values that do not fit their type, read alone with other settings.
    retry = [k for k, r in readings.items() if not r.text or not check(k, r.text)]
    alt: dict[str, Future[Reading]] = {}
    for k in retry:
        z = zones_by_key[k]
        # Alone as one line at a larger scale; numbers with the digit whitelist this time.
        wl = DIGITS_WHITELIST if z.ftype in NUMERIC_TYPES else None
        # An e-mail address is ASCII: the English model cannot produce the marks (ę) the Latin one slipped in.
        lang = eng.alt_lang if z.ftype == "email" else None
        alt[k] = ocr.pool().submit(read_single, z, eng=eng, lang=lang, whitelist=wl, scale=1.5, timeout=timeout)
    for k, pending in alt.items():
        second = pending.result()
        text, factor = tidy(second.text, zones_by_key[k].ftype)
        second = Reading(text, second.conf * factor)
        if second.text and check(k, second.text):
            readings[k] = Reading(second.text, min(second.conf, 0.9))
        else:
            readings[k] = Reading(readings[k].text or second.text, min(readings[k].conf, second.conf) * 0.5)

    # Only names the Latin model read with marks: its misreadings of Vietnamese all carry some (Thåo, Trâñ).
    names = [zones_by_key[k] for k, r in readings.items()
             if zones_by_key[k].ftype == "name" and not r.text.isascii()]
    names_again = (ocr.pool().submit(_names_again, names, eng=eng, timeout=timeout)
                   if names and eng.name_lang else None)
    zero_keys = [k for k, r in readings.items() if zones_by_key[k].ftype == "id" and "0" in r.text]
    zeros = (ocr.pool().submit(_zero_tails, [zones_by_key[k] for k in zero_keys], [readings[k] for k in zero_keys],
                               eng=eng, timeout=timeout) if zero_keys else None)
    if eng.alt_lang:
        _second_opinion(readings, zones_by_key, eng=eng, timeout=timeout)
    for k, fixed in zip(zero_keys, zeros.result() if zeros is not None else [], strict=True):
        if fixed is not None:
            readings[k] = Reading(fixed.text, min(fixed.conf, readings[k].conf))
    if names_again is not None:
        _merge_names(readings, names, names_again.result())
    out.doubted = doubted_share(first_conf)
    hand = _hand_pass(page, drop, widgets, readings, zones_by_key, first_conf, check)
    out.hand_keys = sorted(hand)
    for k, choice in hand.items():
        readings[k] = Reading(choice.text, choice.conf)
        if choice.reason:
            out.flags.append(RawFlag("handwriting_unsure", "warning", f"handwriting: {choice.reason}; please check it",
                                     k))
    by_key = {w.key: w for w in widgets}
    for k in readings:
        if k not in hand and k in by_key and outside_box(page, drop, by_key[k]):
            readings[k] = Reading(readings[k].text, min(readings[k].conf, decode.DOUBT))
            out.flags.append(RawFlag("handwriting_unsure", "warning", "the writing runs past the box's edge, "
                                     "so part of it may be missed; please check it", k))
    for k in hurt:
        if k in out.fields:
            out.fields[k].confidence = min(out.fields[k].confidence, 0.3)
        if k in readings:
            readings[k] = Reading(readings[k].text, min(readings[k].conf, 0.3))
    for k, r in readings.items():
        out.fields[k] = RawField(r.text or None, max(0.0, min(1.0, r.conf)), page_no)
        if not r.text:  # ink in the box but no text came out: blank would be a guess
            out.flags.append(RawFlag("low_confidence", "warning", "something is written here but could not "
                                     "be read; please check it", k))
    return out

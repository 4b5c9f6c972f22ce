"""What is a document that matches no form template: an insurance card, a letter, or unknown, and why.

The dispatcher calls :func:`recognise` (or :func:`read_unrecognised`) with the pages it could not match
to a template: page images of a scan or photo, and/or the words of a PDF text layer. It answers with a
:class:`RawDocument` for a card or a letter, or says why it is neither.

How a card is told from a letter:

* **card-shaped**: a card's outline is found on the page (a phone photo of a card on a table, a flatbed
  copy of a card on a sheet of paper), or the whole image has a card's proportions (a card-scanner
  crop): 3.375 x 2.125 in, so long side / short side between 1.45 and 1.75;
* **card vocabulary**: labels that only cards carry together (member ID, group, Rx BIN/PCN, payer ID,
  copays, plan) and a payer's name;
* **letter layout**: lines of running text across the page, a salutation or closing, a "Re:" line,
  letter vocabulary (referral, explanation of benefits, authorization...).

A page with card vocabulary but neither an outline nor a letter layout is still taken for a card when
the vocabulary is strong and the text is card-sized (a card printed from a payer's portal). Everything
else is ``unknown``, with the evidence that was missing.

OCR: one tesseract call per card face (the face is cut out and straightened first) or per page, single
threaded with a timeout (:mod:`extractors.ocr`). A card reads in well under a second on one core.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from extractors import cards, correspondence, ocr
from extractors import nlp as N
from extractors.base import RawDocument, RawFlag

CARD_ASPECT = (1.45, 1.75)  # ID-1 cards are 1.588; a photo or copy distorts it a little
PARTIAL_ASPECT = 2.4  # a card whose dark band merged with a dark table: its light part alone
CARD_WIDTH_PX = 1400  # a card face is read at this width (~415 dpi): 7-pt print is ~30 px high
MIN_CARD_SHARE = 0.015  # a card outline smaller than this share of the page is noise
SCAN_DPI = 300.0


@dataclass
class PageInput:
    """One page the templates did not recognise.

    ``gray``: the page image (uint8, ideally 300 dpi as :mod:`extractors.images` delivers it), or None
    for a text-layer page. ``words``: the text layer's words, when the page has one (coordinates in
    ``units_per_inch``: 72 for PDF points).
    """

    number: int
    gray: np.ndarray | None = None
    words: list[N.WordBox] | None = None
    units_per_inch: float = SCAN_DPI


@dataclass
class CardRegion:
    quad: np.ndarray  # 4x2 float32, page pixels: top-left, top-right, bottom-right, bottom-left
    aspect: float
    share: float  # of the page area


@dataclass
class Recognition:
    document_type: str  # insurance_card | correspondence | unknown
    reason: str
    document: RawDocument | None = None
    evidence: dict[str, object] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Card outlines
# --------------------------------------------------------------------------------------------------


def _order(pts: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left, the long side horizontal."""
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    p = pts[np.argsort(ang)]  # clockwise from the left-most-upper in image coordinates
    start = int(np.argmin(p[:, 0] + p[:, 1]))
    p = np.roll(p, -start, axis=0)
    w = np.linalg.norm(p[1] - p[0])
    h = np.linalg.norm(p[3] - p[0])
    if h > w:  # long side vertical: the card stands on its end; read it turned to landscape
        p = np.roll(p, -1, axis=0)
    return p.astype(np.float32)


def find_cards(gray: np.ndarray) -> list[CardRegion]:
    """Card outlines on a page or photo: closed contours with a card's proportions, biggest first.
    Edges, not thresholds, because a white card on white paper differs from it only at its edge.

    A card's dark header band on a dark table leaves only the light part of the card outlined: a
    rectangle too long for a card. It is widened to a card's proportions on both sides (the band is on
    one of them), so the face is read whole; the extra strip of table costs nothing."""
    h, w = gray.shape[:2]
    s = min(1.0, 900 / max(h, w))
    small = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else gray
    edges = cv2.Canny(cv2.GaussianBlur(small, (5, 5), 0), 20, 60)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[CardRegion] = []
    area_all = float(small.shape[0] * small.shape[1])
    # An outline broken where a coloured bar meets the card's edge is an open curve: its convex hull
    # is still the card.
    hulls = [cv2.convexHull(c) for c in contours]
    for hull in sorted(hulls, key=cv2.contourArea, reverse=True):
        area = cv2.contourArea(hull)
        if area < MIN_CARD_SHARE * area_all:
            break
        if area > 0.97 * area_all:
            continue
        (cx, cy), (rw, rh), ang = cv2.minAreaRect(hull)
        if min(rw, rh) < 1 or area / (rw * rh) < 0.9:
            continue
        aspect = max(rw, rh) / min(rw, rh)
        if not CARD_ASPECT[0] <= aspect <= PARTIAL_ASPECT:
            continue
        if aspect > CARD_ASPECT[1]:
            long_side = max(rw, rh)
            short = min(rw, rh) + 2 * (long_side / 1.588 - min(rw, rh))
            rw, rh = (long_side, short) if rw >= rh else (short, long_side)
            pts = cv2.boxPoints(((cx, cy), (rw, rh), ang)).astype(np.float32)
        else:
            approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
            pts = approx.reshape(-1, 2).astype(np.float32) if len(approx) == 4 else \
                cv2.boxPoints(((cx, cy), (rw, rh), ang)).astype(np.float32)
        quad = _order(pts / s)
        # The same card is often found twice (both sides of its edge line): keep the bigger one.
        if any(np.linalg.norm(r.quad.mean(0) - quad.mean(0)) < 0.1 * max(h, w) for r in found):
            continue
        found.append(CardRegion(quad, aspect, area / area_all))
    return found


def card_aspect(gray: np.ndarray) -> float:
    h, w = gray.shape[:2]
    return max(h, w) / max(1, min(h, w))


def warp_card(gray: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The card face cut out, straightened and brought to :data:`CARD_WIDTH_PX` wide."""
    w = CARD_WIDTH_PX
    qw = float(np.linalg.norm(quad[1] - quad[0]))
    qh = float(np.linalg.norm(quad[3] - quad[0]))
    h = round(w * qh / max(qw, 1.0))
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    return cv2.warpPerspective(gray, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def fit_width(gray: np.ndarray, width: int = CARD_WIDTH_PX) -> np.ndarray:
    h, w = gray.shape[:2]
    long_side = max(h, w)
    if long_side == width:
        return gray
    s = width / long_side
    return cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def even_polarity(gray: np.ndarray) -> np.ndarray:
    """Print on coloured bands (a payer's name in a header, copays in a footer) turned into dark print
    on white, so one OCR pass with one global threshold reads the whole card.

    A band is a wide, solid area darker than paper: it survives an erosion that removes every stroke of
    ordinary print. Within each band's rectangle, light print on a dark ground is inverted (more pixels
    far above the band's median than far below it), and the ground is then brought to white; inverting
    or stretching only around the letters would leave ragged edges that OCR takes for a picture."""
    h, w = gray.shape[:2]
    f = 4
    small = cv2.resize(gray, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    paper = float(np.percentile(small, 90))
    dark = (small < min(150.0, paper - 40)).astype(np.uint8) * 255
    k = max(3, (min(small.shape[:2]) // 40) | 1)
    core = cv2.erode(dark, np.ones((k, k), np.uint8))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    out = gray
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if bw < 0.4 * small.shape[1] or area < 0.5 * bw * bh or bw < 3 * bh:
            continue  # not a band: a logo, a heavy rule, a blot
        if out is gray:
            out = gray.copy()
        x0, y0 = max(0, (x - k) * f), max(0, (y - k) * f)
        x1, y1 = min(w, (x + bw + k) * f), min(h, (y + bh + k) * f)
        region = out[y0:y1, x0:x1].astype(np.float32)
        ground = float(np.median(region))
        if np.mean(region > ground + 50) > np.mean(region < ground - 50):
            region = 255.0 - region
            ground = 255.0 - ground
        out[y0:y1, x0:x1] = np.clip(region * (245.0 / max(ground, 1.0)), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------------
# OCR
# --------------------------------------------------------------------------------------------------


@dataclass
class Budget:
    """Seconds left for one document; each tesseract call gets what remains (at most its own limit)."""

    total: float
    per_call: float
    start: float = field(default_factory=time.monotonic)

    def call(self) -> float:
        left = self.total - (time.monotonic() - self.start)
        if left <= 0.5:
            raise ocr.OcrError(f"reading took longer than {self.total:g} s")
        return min(self.per_call, left)


def _ocr_words(img: np.ndarray, page: int, eng: ocr.OcrEngine, budget: Budget, psm: int = 3) -> list[N.WordBox]:
    words = ocr.run(even_polarity(img), eng=eng, psm=psm, timeout=budget.call())
    return N.words_from_ocr(words, page)


def _plausible(words: Sequence[N.WordBox]) -> int:
    """How much real text OCR found: confident words of two or more letters."""
    return sum(1 for w in words if w.conf >= 0.6 and sum(c.isalpha() for c in w.text) >= 2)


def _union(a: Sequence[N.WordBox], b: Sequence[N.WordBox]) -> list[N.WordBox]:
    """Words of two readings of one image: all of ``a``, and the words of ``b`` where ``a`` has none."""
    out = list(a)
    for w in b:
        if not any(min(w.x1, x.x1) - max(w.x0, x.x0) > 0.3 * (w.x1 - w.x0)
                   and min(w.y1, x.y1) - max(w.y0, x.y0) > 0.3 * (w.y1 - w.y0) for x in a):
            out.append(w)
    return out


def card_face_words(face: np.ndarray, page: int, eng: ocr.OcrEngine, budget: Budget) -> tuple[np.ndarray, list[N.WordBox]]:
    """Words of one straightened card face (and the face the right way up). Upside down (a photo taken
    the other way round) is tried when the first reading finds hardly any text."""
    words = _ocr_words(face, page, eng, budget)
    if _plausible(words) < 4:
        turned = _ocr_words(cv2.rotate(face, cv2.ROTATE_180), page, eng, budget)
        if _plausible(turned) > _plausible(words):
            face = cv2.rotate(face, cv2.ROTATE_180)
            words = turned
    return face, words


def second_reading(looks: Sequence[PageLook], eng: ocr.OcrEngine, budget: Budget) -> None:
    """Tesseract's page layout analysis (``--psm 3``) reads a card's rows in order but now and then
    takes a payer's name beside its logo for part of a picture; sparse-text mode (``--psm 11``) finds
    such words but splits rows. When the card as a whole lacks its payer or member ID, every face is
    read again that way and the words the first reading missed are added."""
    for lk in looks:
        extra: list[N.WordBox] = []
        for face, offset in lk.faces_read:
            for w in _ocr_words(face, lk.number, eng, budget, psm=11):
                extra.append(N.WordBox(w.text, w.x0, w.y0 + offset, w.x1, w.y1 + offset, w.page, w.conf))
        if extra:
            lk.words = _union(lk.words, extra)


# --------------------------------------------------------------------------------------------------
# Deciding
# --------------------------------------------------------------------------------------------------


@dataclass
class PageLook:
    number: int
    words: list[N.WordBox]
    shape: str | None  # why the page is card-shaped, or None
    faces: int = 0  # card faces found on the page
    units_per_inch: float = SCAN_DPI
    landscape: bool = False  # a photo held sideways, as cards are photographed; pages stand upright
    faces_read: list[tuple[np.ndarray, float]] = field(default_factory=list)  # face image, its y offset

    def text_inches(self) -> tuple[float, float]:
        """Width and height of the area the words cover, in inches at the page's resolution."""
        if not self.words:
            return 0.0, 0.0
        return ((max(w.x1 for w in self.words) - min(w.x0 for w in self.words)) / self.units_per_inch,
                (max(w.y1 for w in self.words) - min(w.y0 for w in self.words)) / self.units_per_inch)


def look_at(page: PageInput, eng: ocr.OcrEngine | None, budget: Budget,
            payers: Path = N.DEFAULT_PAYERS) -> PageLook:
    """Words of one page and whether it is card-shaped. Text-layer pages cost no OCR."""
    if page.words:
        return PageLook(page.number, list(page.words), _words_card_shape(page.words, page.units_per_inch),
                        units_per_inch=page.units_per_inch)
    if page.gray is None or eng is None:
        return PageLook(page.number, [], None)
    gray = page.gray
    aspect = card_aspect(gray)
    card_proportions = CARD_ASPECT[0] <= aspect <= CARD_ASPECT[1]
    regions = find_cards(gray)
    big = [r for r in regions if r.share >= 0.2]
    if big or (regions and not card_proportions):
        # A photo of a card on a table, or card copies on a sheet: read each face cut out and straightened.
        use = big[:1] if big else regions[:2]
        words: list[N.WordBox] = []
        read: list[tuple[np.ndarray, float]] = []
        offset = 0.0
        for r in use:
            face, fw = card_face_words(warp_card(gray, r.quad), page.number, eng, budget)
            # Faces of one page are stacked below each other so their lines never mix.
            words += [N.WordBox(w.text, w.x0, w.y0 + offset, w.x1, w.y1 + offset, w.page, w.conf) for w in fw]
            read.append((face, offset))
            offset += face.shape[0] + 200
        if big or cards.read_card_words(words, payers).vocabulary:
            why = (f"a card outline ({use[0].aspect:.2f}:1) fills {use[0].share:.0%} of the image" if big
                   else f"{len(use)} card outline(s) ({use[0].aspect:.2f}:1) on the page")
            return PageLook(page.number, words, why, faces=len(use), units_per_inch=CARD_WIDTH_PX / 3.375,
                            faces_read=read)
        # A card-shaped box without card words (a letterhead frame, a table): read the page as a page.
    elif card_proportions and (gray.shape[1] > gray.shape[0] or max(gray.shape[:2]) < 2400):
        # Card-proportioned and lying on its side (a page never does), or small: a card scanner's crop.
        face, fw = card_face_words(fit_width(gray), page.number, eng, budget)
        return PageLook(page.number, fw, f"the image has a card's proportions ({aspect:.2f}:1)", faces=1,
                        units_per_inch=CARD_WIDTH_PX / 3.375, faces_read=[(face, 0.0)])
    return PageLook(page.number, _ocr_words(gray, page.number, eng, budget), None,
                    landscape=gray.shape[1] > gray.shape[0])


def _words_card_shape(words: Sequence[N.WordBox], upi: float) -> str | None:
    """A text layer is card-shaped when all its text fits in a card-sized box."""
    if not words:
        return None
    x0 = min(w.x0 for w in words)
    x1 = max(w.x1 for w in words)
    y0 = min(w.y0 for w in words)
    y1 = max(w.y1 for w in words)
    wi, hi = (x1 - x0) / upi, (y1 - y0) / upi
    if wi <= 3.6 and hi <= 2.4 and wi > 1.5:
        return f"all text fits in a card-sized area ({wi:.1f} x {hi:.1f} in)"
    return None


def decide(looks: Sequence[PageLook], payers: Path = N.DEFAULT_PAYERS) -> tuple[str, str, dict[str, object]]:
    """(document_type, reason, evidence) from the pages' words and shapes."""
    words = [w for lk in looks for w in lk.words]
    if not words:
        return "unknown", "no readable text on the page(s)", {}
    card_words = [w for lk in looks if lk.shape for w in lk.words] or words
    first = cards.read_card_words(card_words, payers)
    vocab = first.vocabulary
    shape = next((lk.shape for lk in looks if lk.shape), None)
    letter = correspondence.letter_layout(words, looks[0].units_per_inch)
    evidence: dict[str, object] = {"card_words": sorted(vocab), "card_shape": shape, "letter": letter.reasons}
    kinds = vocab - {"PAYER"}
    words_named = ", ".join(sorted(k.lower() for k in vocab))
    if shape and len(kinds) >= 1 and (vocab & {"MEMBER_ID", "GROUP", "PAYER", "RX_BIN"}) and not letter.is_letter:
        return "insurance_card", f"insurance card: {shape}; card words: {words_named}", evidence
    if shape and first.side == "back" and not letter.is_letter:
        # The back alone: where claims go, whom to call, the fine print; no member named.
        evidence["card_back_words"] = first.back_cues
        return ("insurance_card", f"the back of an insurance card: {shape}; {first.back_cues} back-of-card "
                "wordings", evidence)
    if letter.is_letter:
        return "correspondence", f"letter: {'; '.join(letter.reasons)}", evidence
    small = all(lk.landscape or (lk.text_inches()[0] <= 4.5 and lk.text_inches()[1] <= 3.2) for lk in looks)
    if len(kinds) >= 3 and "MEMBER_ID" in kinds and letter.prose_lines <= 2 and len(words) <= 150 and small:
        return ("insurance_card", f"insurance card: card words ({words_named}) on a card-sized area or a "
                "photo, though no card outline was found", evidence)
    missing = []
    if shape:
        missing.append(f"{shape} but too few card words ({words_named or 'none'})")
    else:
        missing.append(f"no card outline and {'only ' + words_named if words_named else 'no card words'}")
    missing.append("no letter layout (" + (", ".join(letter.reasons) or "no running text") + ")")
    return "unknown", "neither a card nor a letter: " + "; ".join(missing), evidence


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def recognise(pages: Sequence[PageInput], *, eng: ocr.OcrEngine | None = None, timeout: float = 60.0,
              call_timeout: float = 30.0, payers: Path = N.DEFAULT_PAYERS,
              method: str | None = None) -> Recognition:
    """Classify pages no template matched, and read them when they are a card or a letter.

    ``eng`` is needed for page images (``ocr.engine()``); ``timeout`` bounds the whole document and
    ``call_timeout`` each tesseract call. Raises :class:`extractors.ocr.OcrError` when OCR fails or time
    runs out."""
    budget = Budget(timeout, call_timeout)
    if eng is None and any(p.gray is not None and not p.words for p in pages):
        eng = ocr.engine()
    looks = [look_at(p, eng, budget, payers) for p in pages]
    dtype, reason, evidence = decide(looks, payers)
    numbers = [p.number for p in pages]
    method = method or ("text" if all(p.words for p in pages) else "ocr")
    classified = RawFlag("document.classified", "info", reason)
    if dtype == "insurance_card":
        card_words = [w for lk in looks if lk.shape for w in lk.words] or [w for lk in looks for w in lk.words]
        reading = cards.read_card_words(card_words, payers)
        if (reading.payer is None or reading.fields[cards.P + "member_id"].raw is None) and eng is not None \
                and any(lk.faces_read for lk in looks):
            second_reading(looks, eng, budget)
            card_words = [w for lk in looks if lk.shape for w in lk.words] or [w for lk in looks for w in lk.words]
            reading = cards.read_card_words(card_words, payers)
        doc = RawDocument(document_type="insurance_card", method=method, pages=len(pages), fields=reading.fields,
                          flags=[classified, *reading.flags], present=reading.present, source_pages=numbers)
        return Recognition(dtype, reason, doc, evidence)
    if dtype == "correspondence":
        words = [w for lk in looks for w in lk.words]
        letter = correspondence.read_letter_words(words, payers=payers)
        doc = RawDocument(document_type="correspondence", method=method, pages=len(pages), fields=letter.fields,
                          flags=[classified, *letter.flags], present=set(correspondence.LETTER_KEYS),
                          source_pages=numbers)
        return Recognition(dtype, reason, doc, evidence)
    return Recognition(dtype, reason, None, evidence)


def read_unrecognised(pages: Sequence[PageInput], **kwargs: object) -> RawDocument | None:
    """The dispatcher's hook: a RawDocument for a card or a letter, else None (keep ``form.unrecognised``,
    and put :attr:`Recognition.reason` in its message via :func:`recognise` when you want the why)."""
    return recognise(pages, **kwargs).document  # type: ignore[arg-type]


def iter_inputs(path: Path, *, max_pages: int = 20) -> Iterator[PageInput]:
    """Pages of any input file as :class:`PageInput`: text-layer words for digital PDFs, 300-dpi images
    for scans and photos (through :mod:`extractors.images`). For tools and tests; the dispatcher has
    its pages already."""
    from extractors.base import sniff
    from extractors.images import Limits, iter_image_pages, iter_pdf_pages
    from extractors.pdffile import open_pdf

    path = Path(path)
    kind = sniff(path)
    limits = Limits(max_pages=max_pages)
    if kind == "pdf":
        import pdfplumber

        with pdfplumber.open(str(path)) as pdf:
            text_pages = [N.words_from_pdfplumber(p, i + 1) for i, p in enumerate(pdf.pages[:max_pages])]
        if any(text_pages):
            for i, ws in enumerate(text_pages):
                yield PageInput(i + 1, words=ws, units_per_inch=72.0)
            return
        for pg in iter_pdf_pages(path, open_pdf(path), limits):
            yield PageInput(pg.index + 1, gray=pg.gray)
        return
    for pg in iter_image_pages(path, limits):
        yield PageInput(pg.index + 1, gray=pg.gray)


def read_file(path: Path, **kwargs: object) -> Recognition:
    """Classify and read one file as if no template had matched it."""
    pages = list(iter_inputs(Path(path)))
    method = "text" if pages and all(p.words for p in pages) else "ocr"
    return recognise(pages, method=method, **kwargs)  # type: ignore[arg-type]

"""What shows through the envelope windows, address sheets, and the pages of a mail batch.

A piece can go into the envelope as it is when its first page holds the return address and the
recipient's address inside the window rectangles of :data:`~frontdesk.letters.envelope.ENVELOPE`, and
nothing else anywhere a window could show (the keep-clear area): no letterhead, no image, no line, no
form field, no stray text. This is checked on the PDF itself (pdfplumber's character and object
positions), not assumed from the template, because a practice may rearrange a template in Word and
older letters were laid out differently. A piece that fails gets an address sheet in front: a page
with only the two addresses, placed by the spec, and a one-line note for the mail room outside the
windows. With duplex printing every piece then starts on the front of a new sheet (a blank back is
added after an odd page count), so pieces can be separated by sheet count alone.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from frontdesk.letters.envelope import ENVELOPE, POINTS_PER_INCH, Rect, WindowEnvelope

# Glyph boxes (font ascent and descent) reach a little beyond the ink: allow 1.5 pt around each window.
_TOLERANCE = 1.5
_PAGE_SLACK = 1.0  # points: a page within this of 8.5" x 11" is US Letter
ENVELOPE_10 = "#10 double-window"
ENVELOPE_FLAT = "9x12 flat (over 6 sheets)"

_FONT_CANDIDATES = (
    ("LiberationSans", "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
    ("LiberationSans", "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"),
    ("DejaVuSans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)


class LayoutError(Exception):
    """A piece's PDF cannot be batched (unreadable, or not US Letter); ``code`` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _normalise(text: str) -> str:
    """Compare printed text the way a reader sees it: ligatures unfolded, spacing collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _inside(box: tuple[float, float, float, float], rect: Rect) -> bool:
    x0, top, x1, bottom = rect.points()
    return (box[0] >= x0 - _TOLERANCE and box[1] >= top - _TOLERANCE
            and box[2] <= x1 + _TOLERANCE and box[3] <= bottom + _TOLERANCE)


def _overlaps(box: tuple[float, float, float, float], rect: Rect) -> bool:
    x0, top, x1, bottom = rect.points()
    return box[0] < x1 and box[2] > x0 and box[1] < bottom and box[3] > top


def _invisible(obj: dict[str, Any]) -> bool:
    """A white fill without a stroke (LibreOffice paints cell backgrounds so): nothing shows."""
    if obj.get("stroke"):
        return False
    colour = obj.get("non_stroking_color")
    white = colour in (1, (1,), (1, 1, 1), [1], [1, 1, 1], (0, 0, 0, 0), [0, 0, 0, 0])
    return bool(obj.get("fill")) and white


def _lines_in(chars: Iterable[dict[str, Any]]) -> list[str]:
    """Characters grouped into text lines by their baseline, left to right, words split at gaps."""
    rows: list[list[dict[str, Any]]] = []
    for ch in sorted(chars, key=lambda c: (round(c["bottom"], 0), c["x0"])):
        if rows and abs(rows[-1][0]["bottom"] - ch["bottom"]) < 2.0:
            rows[-1].append(ch)
        else:
            rows.append([ch])
    lines = []
    for row in rows:
        row.sort(key=lambda c: c["x0"])
        text, previous = "", None
        for ch in row:
            if previous is not None and ch["x0"] - previous["x1"] > 0.25 * ch["size"]:
                text += " "
            text += ch["text"]
            previous = ch
        lines.append(_normalise(text))
    return [line for line in lines if line]


def window_problem(page: object, return_lines: Sequence[str], recipient_lines: Sequence[str],
                   envelope: WindowEnvelope = ENVELOPE) -> str | None:
    """None when ``page`` (a pdfplumber page) shows exactly these addresses through the windows and
    nothing else; otherwise a short reason (no page content is quoted)."""
    chars = [c for c in page.chars if c["text"].strip()]  # type: ignore[attr-defined]
    in_return, in_recipient = [], []
    for ch in chars:
        box = (ch["x0"], ch["top"], ch["x1"], ch["bottom"])
        if not _overlaps(box, envelope.keep_clear):
            continue
        if _inside(box, envelope.return_address):
            in_return.append(ch)
        elif _inside(box, envelope.recipient_address):
            in_recipient.append(ch)
        else:
            return "text where the envelope windows could show it"
    for kind in ("images", "rects", "lines", "curves", "annots"):
        for obj in getattr(page, kind):
            box = (obj["x0"], obj["top"], obj["x1"], obj["bottom"])
            if _overlaps(box, envelope.keep_clear) and not (kind in ("rects", "curves") and _invisible(obj)):
                return f"{kind.rstrip('s')} where the envelope windows could show it"
    if _lines_in(in_return) != [_normalise(t) for t in return_lines if t.strip()]:
        return "the return address window does not show the practice's address"
    if _lines_in(in_recipient) != [_normalise(t) for t in recipient_lines if t.strip()]:
        return "the recipient window does not show the recipient's name and address"
    return None


@dataclass
class PdfFacts:
    """What the batch needs to know about a piece's PDF."""

    pages: int
    fits_windows: bool
    why_not: str | None = None


def inspect_pdf(data: bytes, return_lines: Sequence[str], recipient_lines: Sequence[str],
                envelope: WindowEnvelope = ENVELOPE) -> PdfFacts:
    """Count the pages, check they are US Letter, and check the first page against the windows."""
    import pdfplumber

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = pdf.pages
            if not pages:
                raise LayoutError("pdf.empty", "the PDF has no pages")
            width, height = envelope.page_width * POINTS_PER_INCH, envelope.page_height * POINTS_PER_INCH
            for page in pages:
                if (abs(float(page.width) - width) > _PAGE_SLACK or abs(float(page.height) - height) > _PAGE_SLACK
                        or (page.rotation or 0) % 360):
                    raise LayoutError("pdf.page_size", "a page is not US Letter portrait (8.5 x 11 inches)")
            problem = window_problem(pages[0], return_lines, recipient_lines, envelope)
            return PdfFacts(pages=len(pages), fits_windows=problem is None, why_not=problem)
    except LayoutError:
        raise
    except Exception as exc:  # pdfminer raises many kinds on a damaged file
        raise LayoutError("pdf.unreadable", f"the PDF cannot be read ({type(exc).__name__})") from None


# --- address sheets ---------------------------------------------------------------------------------------


@cache
def _font() -> str:
    """A TrueType font with accents and more (names are not all ASCII); Helvetica if none is installed."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for name, path in _FONT_CANDIDATES:
        if Path(path).is_file():
            try:
                pdfmetrics.registerFont(TTFont(name, path))
                return name
            except Exception:  # a damaged font file: try the next one
                continue
    return "Helvetica"


def _draw_block(canvas: object, rect: Rect, lines: Sequence[str], size: float, leading: float) -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    font = _font()
    widest = max((stringWidth(line, font, size) for line in lines), default=0.0)
    room = rect.width * POINTS_PER_INCH
    if widest > room:  # shrink to fit the window rather than let a long name run outside it
        scale = room / widest
        size, leading = size * scale, leading * scale
    page_height = ENVELOPE.page_height * POINTS_PER_INCH
    baseline = page_height - rect.top * POINTS_PER_INCH - 2.0 - size
    text = canvas.beginText()  # type: ignore[attr-defined]
    text.setFont(font, size, leading)
    text.setTextOrigin(rect.left * POINTS_PER_INCH, baseline)
    for line in lines:
        text.textLine(line)
    canvas.drawText(text)  # type: ignore[attr-defined]


def address_sheet(return_lines: Sequence[str], recipient_lines: Sequence[str], note: str,
                  envelope: WindowEnvelope = ENVELOPE) -> bytes:
    """A one-page PDF with the addresses exactly in the windows and ``note`` (ids only) near the bottom.

    ``invariant`` output: the same addresses give the same bytes, so a rebuilt batch is identical.
    """
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    width, height = envelope.page_width * POINTS_PER_INCH, envelope.page_height * POINTS_PER_INCH
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1, pageCompression=1)
    canvas.setTitle("Address sheet")
    canvas.setAuthor("Frontdesk")
    _draw_block(canvas, envelope.return_address, [t for t in return_lines if t.strip()], 9, 11)
    _draw_block(canvas, envelope.recipient_address, [t for t in recipient_lines if t.strip()], 10, 12)
    canvas.setFont(_font(), 7)
    canvas.setFillGray(0.45)
    canvas.drawString(envelope.margin * POINTS_PER_INCH, envelope.margin * POINTS_PER_INCH, note)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --- planning and composing a batch ------------------------------------------------------------------------


@dataclass
class PieceLayout:
    """Where one piece sits in the batch PDF."""

    position: int
    first_page: int
    content_pages: int
    address_sheet: bool
    blank_pages: int
    pages: int
    sheets: int
    envelope: str
    padding: int = 0  # the blank page that ends the piece on a back (duplex)


def plan_piece(position: int, first_page: int, content_pages: int, needs_sheet: bool, *, duplex: bool,
               envelope: WindowEnvelope = ENVELOPE) -> PieceLayout:
    """The pages of one piece: an address sheet (and its blank back) when needed, the content, and a
    blank page to end on a back when duplex, so the next piece starts on a new sheet."""
    sheet_pages = (2 if duplex else 1) if needs_sheet else 0
    padding = (sheet_pages + content_pages) % 2 if duplex else 0
    pages = sheet_pages + content_pages + padding
    sheets = pages // 2 if duplex else pages
    kind = ENVELOPE_10 if sheets <= envelope.max_sheets else ENVELOPE_FLAT
    blank = padding + (1 if needs_sheet and duplex else 0)
    return PieceLayout(position, first_page, content_pages, needs_sheet, blank, pages, sheets, kind, padding)


def plan_batch(pieces: Sequence[tuple[int, bool]], *, duplex: bool) -> list[PieceLayout]:
    """Layouts for ``(content pages, needs address sheet)`` in batch order."""
    layouts, page = [], 1
    for position, (content_pages, needs_sheet) in enumerate(pieces, start=1):
        layout = plan_piece(position, page, content_pages, needs_sheet, duplex=duplex)
        layouts.append(layout)
        page += layout.pages
    return layouts


@dataclass
class BatchPiece:
    """A piece ready to compose: its filed PDF and the addresses the windows must show."""

    piece_id: str
    kind: str
    recipient: str
    address_lines: list[str]
    return_lines: list[str]
    pdf: bytes
    layout: PieceLayout | None = None
    extra: dict[str, str] = field(default_factory=dict)


def compose(pieces: Sequence[BatchPiece], batch_id: str, *, duplex: bool,
            envelope: WindowEnvelope = ENVELOPE) -> bytes:
    """One print-ready PDF: the pieces in order, each with its address sheet and padding."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    width, height = envelope.page_width * POINTS_PER_INCH, envelope.page_height * POINTS_PER_INCH
    total = len(pieces)
    for piece in pieces:
        layout = piece.layout
        assert layout is not None
        if layout.address_sheet:
            note = (f"Address sheet: piece {layout.position} of {total} in batch {batch_id} ({piece.piece_id}), "
                    f"{layout.sheets} sheet(s). Keep with the pages that follow.")
            writer.add_page(PdfReader(io.BytesIO(address_sheet(piece.return_lines,
                                                               [piece.recipient, *piece.address_lines],
                                                               note, envelope))).pages[0])
            if duplex:
                writer.add_blank_page(width, height)
        reader = PdfReader(io.BytesIO(piece.pdf))
        if len(reader.pages) != layout.content_pages:
            raise LayoutError("pdf.changed", "the filed PDF no longer has the pages it was planned with")
        for page in reader.pages:
            writer.add_page(page)
        for _ in range(layout.padding):
            writer.add_blank_page(width, height)
    writer.add_metadata({"/Title": f"Mail batch {batch_id}", "/Producer": "Frontdesk"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- manifest ------------------------------------------------------------------------------------------------

MANIFEST_COLUMNS = ["item_id", "position", "kind", "recipient", "address", "first_page", "pages", "sheets",
                    "content_pages", "address_sheet", "blank_pages", "envelope"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe
    (OWASP's advice for CSV injection), which spreadsheets show as plain text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_value(cell: str) -> str:
    """The value behind a cell written by :func:`csv_safe`."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def manifest_csv(pieces: Sequence[BatchPiece]) -> bytes:
    """One row per piece, in batch order; the address is its lines joined by " / "."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    for piece in pieces:
        layout = piece.layout
        assert layout is not None
        writer.writerow([csv_safe(v) for v in (
            piece.piece_id, layout.position, piece.kind, piece.recipient, " / ".join(piece.address_lines),
            layout.first_page, layout.pages, layout.sheets, layout.content_pages,
            "yes" if layout.address_sheet else "no", layout.blank_pages, layout.envelope)])
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read accented names right


def read_manifest(data: bytes) -> list[dict[str, str]]:
    """Rows of a manifest, values as they were before :func:`csv_safe`."""
    rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    return [{k: csv_value(v) for k, v in row.items()} for row in rows]


__all__ = ["ENVELOPE_10", "ENVELOPE_FLAT", "MANIFEST_COLUMNS", "BatchPiece", "LayoutError", "PdfFacts",
           "PieceLayout", "address_sheet", "compose", "csv_safe", "csv_value", "inspect_pdf", "manifest_csv",
           "plan_batch", "plan_piece", "read_manifest", "window_problem"]

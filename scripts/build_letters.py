"""Build the letter templates in templates/letters/ from code.

Templates are generated rather than edited in Word so that every Jinja tag sits inside exactly one run
(Word splits runs on spell-check and formatting, and a split tag stops rendering) and so that a rebuild
produces the same bytes (fixed document properties and zip timestamps), which keeps diffs reviewable.

Every template opens with the same window block: the practice's return address and the recipient's
address sit exactly where a #10 double-window envelope shows them once the sheet is tri-folded
(:data:`frontdesk.letters.envelope.ENVELOPE`), and the rest of the letterhead (logo, name, phone, date)
stays to the right of the windows. The block is a borderless table with rows of exact height, so Word
and LibreOffice put it in the same place whatever the letter says. A practice that rearranges it in
Word is still safe: the mail batch checks the printed page and adds an address sheet when the windows
would show anything else.

    python scripts/build_letters.py                      # rewrite templates/letters/*.docx and logo.png
    python scripts/build_letters.py --preview /tmp/prev  # also render samples, PDF and PNG to look at
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docx import Document
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_ROW_HEIGHT_RULE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Inches, Pt, RGBColor
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from a checkout without installing

from frontdesk.letters.envelope import ENVELOPE  # noqa: E402

LETTERS_DIR = ROOT / "templates" / "letters"
LOGO_NAME = "logo.png"

FONT = "Arial"  # Word has it everywhere; LibreOffice substitutes the metric-compatible Liberation Sans
ACCENT = RGBColor(0x1F, 0x4E, 0x5F)
GREY = RGBColor(0x55, 0x5B, 0x61)
FIXED_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Page geometry (inches). The body has comfortable 0.75" side margins; the window block reaches out to
# the envelope spec's 0.5" edge with a negative table indent.
SIDE_MARGIN = 0.75
TOP_MARGIN = ENVELOPE.return_address.top  # the window block starts where the return window does
BOTTOM_MARGIN = 0.6
BODY_WIDTH = 8.5 - 2 * SIDE_MARGIN
BLOCK_LEFT = ENVELOPE.return_address.left
WINDOW_COLUMN = ENVELOPE.keep_clear.right - BLOCK_LEFT  # left column: the windows and their margins
RIGHT_COLUMN = ENVELOPE.page_width - ENVELOPE.margin - ENVELOPE.keep_clear.right
ADDRESS_WIDTH = ENVELOPE.recipient_address.width
ROW_HEIGHTS = (
    ENVELOPE.return_address.height,
    ENVELOPE.recipient_address.top - ENVELOPE.return_address.bottom,
    ENVELOPE.recipient_address.height,
    ENVELOPE.body_top - ENVELOPE.recipient_address.bottom,
)
RETURN_SIZE, RETURN_LEADING = 9, 11  # points: 5 lines fit the 0.792" return window
RECIPIENT_SIZE, RECIPIENT_LEADING = 10, 12  # 5 lines fit the 0.875" recipient window
ADDRESS_INSET = 0.02

Run = tuple[str, dict[str, Any]]


def _r(text: str, **fmt: Any) -> Run:
    return (text, fmt)


# --- the placeholder logo ---------------------------------------------------------------------------


def placeholder_logo_png(size: int = 160) -> bytes:
    """A plain logo (a teal rounded square with a white cross) for practices that have not set their own.

    Written by hand with stored (uncompressed) deflate blocks so the bytes never depend on the zlib or
    Pillow version: the committed templates embed it and a rebuild must reproduce them exactly.
    """
    radius, bar = size // 6, size // 5
    centre = size // 2
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter type 0 for every scanline
        for x in range(size):
            dx = max(radius - x, x - (size - 1 - radius), 0)
            dy = max(radius - y, y - (size - 1 - radius), 0)
            inside = dx * dx + dy * dy <= radius * radius
            cross = (abs(x - centre) < bar // 2 and size // 5 <= y < size - size // 5) or (
                abs(y - centre) < bar // 2 and size // 5 <= x < size - size // 5
            )
            row.append(0 if not inside else 2 if cross else 1)
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 3, 0, 0, 0)  # 8-bit palette
    palette = bytes([0xFF, 0xFF, 0xFF, 0x1F, 0x4E, 0x5F, 0xFF, 0xFF, 0xFF])
    transparency = bytes([0x00, 0xFF, 0xFF])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", palette)
        + chunk(b"tRNS", transparency)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )


# --- building blocks --------------------------------------------------------------------------------


#: The language being built: "en" writes the text as it stands here, "es" through the ES table below.
_LANGUAGE = "en"


def _tr(text: str) -> str:
    """The text in the language being built. Tags and punctuation stay; a sentence with no Spanish in
    ES stops the build, so a template is never half translated."""
    if _LANGUAGE == "en" or "{{" in text or "{%" in text or not any(c.isalpha() for c in text):
        return text
    try:
        return ES[text]
    except KeyError:
        raise SystemExit(f"no Spanish for {text!r}: add it to ES in scripts/build_letters.py") from None


def _format_runs(paragraph: Paragraph, runs: tuple[Run | str, ...]) -> None:
    for item in runs:
        text, style_args = (item, {}) if isinstance(item, str) else item
        run = paragraph.add_run(_tr(text))
        if style_args.get("bold"):
            run.bold = True
        if "size" in style_args:
            run.font.size = Pt(style_args["size"])
        if "color" in style_args:
            run.font.color.rgb = style_args["color"]


def _paragraph(
    container: Any,
    *runs: Run | str,
    style: str | None = None,
    before: float = 0,
    after: float = 8,
    keep_with_next: bool = False,
    align: WD_ALIGN_PARAGRAPH | None = None,
    leading: float | None = None,
) -> Paragraph:
    """A paragraph built run by run, so a tag given as its own run stays in one piece.

    In a table cell the cell's first (empty) paragraph is used before new ones are added.
    """
    paragraph: Paragraph | None = None
    if isinstance(container, _Cell):
        first = container.paragraphs[0]
        if not first.runs and not getattr(container, "_used", False):
            paragraph = first
            if style:
                paragraph.style = container.part.document.styles[style]
        container._used = True  # type: ignore[attr-defined]
    if paragraph is None:
        paragraph = container.add_paragraph(style=style)
    fmt = paragraph.paragraph_format
    fmt.space_before = Pt(before)
    fmt.space_after = Pt(after)
    fmt.keep_with_next = keep_with_next
    if align is not None:
        paragraph.alignment = align
    if leading is not None:
        fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        fmt.line_spacing = Pt(leading)
    _format_runs(paragraph, runs)
    return paragraph


def _control(container: Any, tag: str) -> None:
    """A docxtpl paragraph tag ({%p ... %}): docxtpl removes the whole paragraph when rendering."""
    _paragraph(container, tag, after=0)


def _set_cell_margins(element: Any, tag: str, **margins: float) -> None:
    """Cell margins in inches (``tag`` is w:tblCellMar for a table, w:tcMar for one cell)."""
    holder = OxmlElement(tag)
    for side in ("top", "left", "bottom", "right"):
        node = OxmlElement(f"w:{side}")
        node.set(qn("w:w"), str(round(margins.get(side, 0.0) * 1440)))
        node.set(qn("w:type"), "dxa")
        holder.append(node)
    element.append(holder)


def _fixed_table(container: Any, rows: int, widths: list[float], *, indent: float = 0.0) -> Table:
    """A borderless table with fixed column widths (inches), zero cell margins and a given indent."""
    table = container.add_table(rows=rows, cols=len(widths))
    table.autofit = False
    tbl_pr = table._tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    tbl_pr.append(layout)
    width = OxmlElement("w:tblW")
    width.set(qn("w:w"), str(round(sum(widths) * 1440)))
    width.set(qn("w:type"), "dxa")
    tbl_pr.append(width)
    ind = OxmlElement("w:tblInd")
    ind.set(qn("w:w"), str(round(indent * 1440)))
    ind.set(qn("w:type"), "dxa")
    tbl_pr.append(ind)
    _set_cell_margins(tbl_pr, "w:tblCellMar")
    for column, inches in zip(table.columns, widths, strict=True):
        column.width = Inches(inches)
        for cell in column.cells:
            cell.width = Inches(inches)
    return table


def _cell_margins(cell: _Cell, **margins: float) -> None:
    _set_cell_margins(cell._tc.get_or_add_tcPr(), "w:tcMar", **margins)


def _border(paragraph: Paragraph, side: str, *, style: str = "single", size: int = 8, space: int = 6) -> None:
    """A paragraph border line (it moves with the text, unlike a drawn shape)."""
    p_pr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    line = OxmlElement(f"w:{side}")
    for key, value in (("w:val", style), ("w:sz", str(size)), ("w:space", str(space)), ("w:color", str(ACCENT))):
        line.set(qn(key), value)
    borders.append(line)
    p_pr.append(borders)


def _shade(cell: _Cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shading)


def _repeat_header(table: Table, row: int = 0) -> None:
    """Repeat a table's header row at the top of every page it runs onto."""
    tr_pr = table.rows[row]._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    tr_pr.append(header)


def _no_split(table: Table) -> None:
    """Keep each row on one page (a service line cut in half is hard to read)."""
    for row in table.rows:
        row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))


def _base_document() -> Any:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Inches(ENVELOPE.page_width), Inches(ENVELOPE.page_height)
    section.top_margin = Inches(TOP_MARGIN)
    section.bottom_margin = Inches(BOTTOM_MARGIN)
    section.left_margin = section.right_margin = Inches(SIDE_MARGIN)
    section.header_distance = section.footer_distance = Inches(0.3)

    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(11)
    r_fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        r_fonts.set(qn(attr), FONT)
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.MULTIPLE
    normal.paragraph_format.line_spacing = 1.1

    bullet = doc.styles["List Bullet"]
    bullet.font.name = FONT
    bullet.paragraph_format.space_after = Pt(3)

    props = doc.core_properties
    props.author = props.last_modified_by = "Frontdesk"
    props.created = props.modified = FIXED_TIME
    props.revision = 1
    props.comments = "Generated by scripts/build_letters.py; edit the script, not this file."
    return doc


def _logo(cell: _Cell, logo: Path) -> None:
    """The configured logo when the letter data carries one, else the placeholder built into the template."""
    right = WD_ALIGN_PARAGRAPH.RIGHT
    _control(cell, "{%p if practice.logo is defined and practice.logo %}")
    _paragraph(cell, "{{ practice.logo }}", after=4, align=right)
    _control(cell, "{%p else %}")
    placeholder = _paragraph(cell, after=4, align=right)
    placeholder.add_run().add_picture(str(logo), height=Inches(0.6))
    _control(cell, "{%p endif %}")


def _window_block(
    doc: Any,
    recipient: str,
    logo: Path,
    right_column: Callable[[_Cell], None],
) -> None:
    """The top of the first page: addresses in the envelope windows, letterhead to their right.

    ``recipient`` names the context object holding ``full_name`` and ``address_lines``.
    """
    table = _fixed_table(doc, len(ROW_HEIGHTS), [WINDOW_COLUMN, RIGHT_COLUMN], indent=BLOCK_LEFT - SIDE_MARGIN)
    for row, height in zip(table.rows, ROW_HEIGHTS, strict=True):
        row.height = Inches(height)
        row.height_rule = WD_ROW_HEIGHT_RULE.EXACTLY
    wrap_at = WINDOW_COLUMN - ADDRESS_WIDTH  # text wraps inside the window rectangle's width
    for index in range(len(ROW_HEIGHTS)):
        # A hair below the window's top edge, so the glyphs' ascent stays inside the rectangle too.
        _cell_margins(table.cell(index, 0), right=wrap_at, top=ADDRESS_INSET if index in (0, 2) else 0.0)

    sender = table.cell(0, 0)
    sender.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.TOP
    _paragraph(sender, _r("{{ practice.name }}", size=RETURN_SIZE), after=0, leading=RETURN_LEADING)
    _control(sender, "{%p for line in practice.address_lines %}")
    _paragraph(sender, _r("{{ line }}", size=RETURN_SIZE), after=0, leading=RETURN_LEADING)
    _control(sender, "{%p endfor %}")

    to = table.cell(2, 0)
    to.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.TOP
    _paragraph(to, _r(f"{{{{ {recipient}.full_name }}}}", size=RECIPIENT_SIZE), after=0, leading=RECIPIENT_LEADING)
    _control(to, f"{{%p for line in {recipient}.address_lines %}}")
    _paragraph(to, _r("{{ line }}", size=RECIPIENT_SIZE), after=0, leading=RECIPIENT_LEADING)
    _control(to, "{%p endfor %}")

    letterhead = table.cell(0, 1).merge(table.cell(len(ROW_HEIGHTS) - 1, 1))
    letterhead.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.TOP
    _logo(letterhead, logo)
    right_column(letterhead)


def _letter_letterhead(cell: _Cell) -> None:
    """Name, phone, date and reference, right-aligned beside the windows."""
    right = WD_ALIGN_PARAGRAPH.RIGHT
    _paragraph(cell, _r("{{ practice.name }}", bold=True, size=13, color=ACCENT), after=1, align=right)
    _paragraph(cell, _r("Phone ", size=9, color=GREY), _r("{{ practice.phone }}", size=9, color=GREY),
               after=14, align=right)
    _paragraph(cell, _r("{{ letter_date }}", size=10), after=2, align=right)
    _paragraph(cell, _r("Reference ", size=8, color=GREY), _r("{{ reference }}", size=8, color=GREY),
               after=0, align=right)


def _letter_start(doc: Any, logo: Path, title: str | tuple[Run | str, ...]) -> None:
    _window_block(doc, "patient", logo, _letter_letterhead)
    runs = (title,) if isinstance(title, str) else title
    heading = _paragraph(doc, *[_r(r, bold=True, size=13, color=ACCENT) if isinstance(r, str) else r
                                for r in runs], before=10, after=10)
    heading.paragraph_format.keep_with_next = True
    _paragraph(doc, "Dear ", "{{ patient.first_name }}", ",", after=10)


def _sign_off(doc: Any) -> None:
    _paragraph(doc, "Kind regards,", after=20, keep_with_next=True)
    _paragraph(doc, "Front Desk, ", "{{ practice.name }}", after=24)
    _paragraph(doc, _r("Reference: ", size=9, color=GREY), _r("{{ reference }}", size=9, color=GREY), after=0)


def _bullet(doc: Any, *runs: Run | str, after: float = 3) -> Paragraph:
    return _paragraph(doc, *runs, style="List Bullet", after=after)


def _bullets_of(doc: Any, loop: str, item: str = "{{ item }}") -> None:
    _control(doc, f"{{%p for item in {loop} %}}")
    _bullet(doc, item)
    _control(doc, "{%p endfor %}")


# --- the letters --------------------------------------------------------------------------------------


def build_missing_insurance(path: Path, logo: Path) -> Path:
    """The letter asking a new patient for the insurance details their paperwork lacked."""
    doc = _base_document()
    _letter_start(doc, logo, "Your insurance information")
    _paragraph(
        doc,
        "Thank you for choosing ",
        "{{ practice.name }}",
        ". We have looked over your new-patient paperwork, and we need a little more information about "
        "your health insurance. With it, we can send the bill for your care to your insurance company.",
    )
    _paragraph(doc, "Here is what we still need:", after=4, keep_with_next=True)
    _bullets_of(doc, "missing_items")
    _paragraph(
        doc,
        "All of this is on your insurance card. You can get it to us in whichever way is easiest for you:",
        before=10,
        after=4,
        keep_with_next=True,
    )
    _bullet(doc, _r("Bring your card", bold=True), " to your appointment. We will make a copy at the front desk.")
    _bullet(doc, _r("Call us", bold=True), " at ", "{{ practice.phone }}",
            " and read us the information on your card.")
    _bullet(
        doc,
        _r("Mail a copy", bold=True),
        " of the front and back of your card to ",
        "{{ practice.name }}",
        ", ",
        "{{ practice.address_lines|join(', ') }}",
        ".",
        after=10,
    )
    _paragraph(
        doc,
        _r("Your appointment is not affected.", bold=True),
        " Please keep it as planned. If you do not have insurance, or you would rather pay for your care "
        "yourself, just call and let us know. If you have already sent us this information, thank you; "
        "there is nothing more you need to do.",
    )
    _paragraph(
        doc,
        "If you have any questions, we are happy to help. When you call, please mention the reference "
        "number at the bottom of this letter.",
        after=16,
    )
    _sign_off(doc)
    return _save_deterministic(doc, path)


def build_incomplete_intake(path: Path, logo: Path) -> Path:
    """The letter asking for what a new-patient form left blank or unreadable (other than insurance)."""
    doc = _base_document()
    _letter_start(doc, logo, "A few details are missing from your forms")
    _paragraph(
        doc,
        "Thank you for filling in your new-patient forms for ",
        "{{ practice.name }}",
        ". When we looked them over, we found that a few answers are missing or hard to read:",
        after=4,
        keep_with_next=True,
    )
    _bullets_of(doc, "missing_items")
    _paragraph(doc, "You can help us in whichever way is easiest for you:", before=10, after=4,
               keep_with_next=True)
    _bullet(doc, _r("Call us", bold=True), " at ", "{{ practice.phone }}",
            ". We can fill in the answers with you over the phone; it only takes a few minutes.")
    _bullet(doc, _r("Tell us at your visit.", bold=True),
            " Please come a few minutes early so we have time to go through it together.", after=10)
    _paragraph(
        doc,
        "We ask because complete records help us take good care of you and make sure your visits are "
        "billed correctly. ",
        _r("Your appointment is not affected.", bold=True),
        " If you have already sent us this information, thank you; there is nothing more you need to do.",
        after=16,
    )
    _sign_off(doc)
    return _save_deterministic(doc, path)


def build_appointment_reminder(path: Path, logo: Path) -> Path:
    """A reminder of an upcoming visit, with the checklist of what to bring or settle before it."""
    doc = _base_document()
    _letter_start(doc, logo, (_r("Your appointment on ", bold=True, size=13, color=ACCENT),
                              _r("{{ appointment.date }}", bold=True, size=13, color=ACCENT)))
    _paragraph(doc, "This is a friendly reminder of your next visit with us:", after=6, keep_with_next=True)
    when = _paragraph(doc, _r("{{ appointment.date }}", bold=True), _r(" at ", bold=True),
                      _r("{{ appointment.time }}", bold=True), after=0, keep_with_next=True)
    when.paragraph_format.left_indent = Inches(0.3)
    _control(doc, "{%p if appointment.provider %}")
    who = _paragraph(doc, "with ", "{{ appointment.provider }}", after=0, keep_with_next=True)
    who.paragraph_format.left_indent = Inches(0.3)
    _control(doc, "{%p endif %}")
    where = _paragraph(doc, "{{ practice.name }}", ", ", "{{ practice.address_lines|join(', ') }}", after=12)
    where.paragraph_format.left_indent = Inches(0.3)

    _paragraph(doc, _r("Please bring:", bold=True), after=4, keep_with_next=True)
    _bullet(doc, "Your insurance card and a photo ID")
    _bullet(doc, "A list of the medicines you take, with their doses (vitamins and supplements too)")
    _bullet(doc, "Your glasses or hearing aids, if you use them", after=10)
    _control(doc, "{%p if missing_items %}")
    _paragraph(doc, _r("Before or at your visit, please also:", bold=True), after=4, keep_with_next=True)
    _bullets_of(doc, "missing_items")
    _control(doc, "{%p endif %}")
    _paragraph(
        doc,
        "Please arrive 15 minutes early so we have time to check you in. If you cannot come, please call us at ",
        "{{ practice.phone }}",
        " as soon as you can: we will find you a new time and offer yours to someone who is waiting.",
        before=10,
        after=16,
    )
    _paragraph(doc, "We look forward to seeing you.", after=12)
    _sign_off(doc)
    return _save_deterministic(doc, path)


def build_welcome(path: Path, logo: Path) -> Path:
    """A welcome for a new patient: what to expect, what to bring, how to reach the practice."""
    doc = _base_document()
    _letter_start(doc, logo, (_r("Welcome to ", bold=True, size=13, color=ACCENT),
                              _r("{{ practice.name }}", bold=True, size=13, color=ACCENT)))
    _paragraph(
        doc,
        "Thank you for choosing us for your care. We are glad to have you as a patient, and we want your "
        "first visit to be easy and unhurried.",
    )
    _paragraph(doc, _r("Before your first visit", bold=True), after=4, keep_with_next=True)
    _bullet(doc, "Fill in the new-patient forms, if you have not done so yet. Ask us if you need a copy.")
    _bullet(doc, "Write down the medicines you take, with their doses, including vitamins and supplements.")
    _bullet(doc, "Note any questions you would like to ask; it is easy to forget them in the room.", after=10)
    _paragraph(doc, _r("Please bring", bold=True), after=4, keep_with_next=True)
    _bullet(doc, "Your insurance card and a photo ID")
    _bullet(doc, "Your list of medicines")
    _bullet(doc, "Recent test results or records from other doctors, if you have them", after=10)
    _paragraph(
        doc,
        "Please arrive 15 minutes before your appointment so we can check you in without rushing. If you "
        "need to change or cancel a visit, call us at ",
        "{{ practice.phone }}",
        ", at least a day ahead if you can.",
    )
    _paragraph(
        doc,
        "You can call us with any question about your care, your appointments or your bill. ",
        _r("In an emergency, call 911.", bold=True),
        after=16,
    )
    _paragraph(doc, "We look forward to meeting you.", after=12)
    _sign_off(doc)
    return _save_deterministic(doc, path)


# --- the patient statement ----------------------------------------------------------------------------

SERVICE_COLUMNS = [  # (heading, value tag, width in inches, right-aligned)
    ("Date", "{{ line.date }}", 0.74, False),
    ("Patient", "{{ line.patient }}", 1.14, False),
    ("Code", "{{ line.code }}", 0.55, False),
    ("Description", "{{ line.description }}", 1.62, False),
    ("Charges", "{{ line.charge }}", 0.62, True),
    ("Insurance paid", "{{ line.insurance_paid }}", 0.62, True),
    ("Adjust- ments", "{{ line.adjustment }}", 0.57, True),
    ("You paid", "{{ line.patient_paid }}", 0.57, True),
    ("Balance", "{{ line.balance }}", 0.57, True),
]
TOTAL_TAGS = ["{{ totals.charges }}", "{{ totals.insurance_paid }}", "{{ totals.adjustments }}",
              "{{ totals.patient_paid }}", "{{ totals.balance }}"]
AGING_COLUMNS = [
    ("Current", "{{ aging.current }}"),
    ("31 to 60 days", "{{ aging.days_31_60 }}"),
    ("61 to 90 days", "{{ aging.days_61_90 }}"),
    ("Over 90 days", "{{ aging.over_90 }}"),
    ("Amount due", "{{ amount_due }}"),
]


def _stub(cell: _Cell) -> None:
    """The remittance stub beside the windows: what the patient sends back with the payment."""
    _paragraph(cell, _r("STATEMENT", bold=True, size=13, color=ACCENT), after=4)
    for label, tag in (("Statement date", "{{ statement_date }}"), ("Account number", "{{ account }}"),
                       ("Please pay by", "{{ due_date }}")):
        _paragraph(cell, _r(f"{label}: ", size=9, color=GREY), _r(tag, size=9), after=0)
    _paragraph(cell, _r("Amount due: ", bold=True, size=11), _r("{{ amount_due }}", bold=True, size=11),
               before=3, after=5)
    _paragraph(cell, _r("Amount enclosed: $ ____________", size=10), after=5)
    _paragraph(cell, _r("Make checks payable to ", size=8, color=GREY),
               _r("{{ remit_to.name }}", size=8, color=GREY), after=0)
    _paragraph(cell, _r("and send them to: ", size=8, color=GREY),
               _r("{{ remit_to.address_lines|join(', ') }}", size=8, color=GREY), after=0)
    _paragraph(cell, _r("Write your account number on your check.", size=8, color=GREY), after=0)


def _cell_text(cell: _Cell, *runs: Run | str, right: bool = False, size: float = 8, bold: bool = False) -> None:
    styled = [(_r(r, size=size, bold=bold) if isinstance(r, str) else r) for r in runs]
    _paragraph(cell, *styled, after=0, align=WD_ALIGN_PARAGRAPH.RIGHT if right else None)


def build_patient_statement(path: Path, logo: Path) -> Path:
    """The bill: a tear-off remittance stub at the top, then the service lines, aging and how to pay."""
    doc = _base_document()
    _window_block(doc, "guarantor", logo, _stub)
    cut = _paragraph(
        doc,
        _r("Please detach along this line and return the top part with your payment.", size=8, color=GREY),
        before=6,
        after=10,
        align=WD_ALIGN_PARAGRAPH.CENTER,
    )
    _border(cut, "top", style="dashed", size=6, space=4)

    _paragraph(doc, _r("Your statement from ", bold=True, size=13, color=ACCENT),
               _r("{{ practice.name }}", bold=True, size=13, color=ACCENT), after=2, keep_with_next=True)
    _paragraph(doc, _r("Statement ", size=9, color=GREY), _r("{{ reference }}", size=9, color=GREY),
               _r(" for account ", size=9, color=GREY), _r("{{ account }}", size=9, color=GREY),
               _r(", dated ", size=9, color=GREY), _r("{{ statement_date }}", size=9, color=GREY), after=8)
    _paragraph(
        doc,
        "Here is the care you received and what is left to pay after your insurance. If anything looks "
        "wrong, or you have a question about this bill, please call us at ",
        "{{ practice.phone }}",
        ". We are glad to help.",
        after=8,
    )

    widths = [w for _, _, w, _ in SERVICE_COLUMNS]
    lines = _fixed_table(doc, 5, widths)
    for cell, (heading, _, _, right) in zip(lines.rows[0].cells, SERVICE_COLUMNS, strict=True):
        _cell_text(cell, heading, right=right, bold=True)
        _shade(cell, "DCE6EA")
    _repeat_header(lines)
    _cell_text(lines.cell(1, 0), "{%tr for line in lines %}")
    for cell, (_, tag, _, right) in zip(lines.rows[2].cells, SERVICE_COLUMNS, strict=True):
        _cell_text(cell, tag, right=right)
    _cell_text(lines.cell(3, 0), "{%tr endfor %}")
    label = lines.cell(4, 0).merge(lines.cell(4, 3))
    _cell_text(label, "Totals", bold=True)
    for cell, tag in zip(lines.rows[4].cells[4:], TOTAL_TAGS, strict=True):
        _cell_text(cell, tag, right=True, bold=True)
        _shade(cell, "F1F4F6")
    _shade(label, "F1F4F6")
    for row in lines.rows:
        for cell in row.cells:
            _cell_margins(cell, top=0.03, bottom=0.03, left=0.04, right=0.04)
    _no_split(lines)

    _paragraph(doc, _r("How old the balance is", bold=True), before=12, after=4, keep_with_next=True)
    aging = _fixed_table(doc, 2, [BODY_WIDTH / len(AGING_COLUMNS)] * len(AGING_COLUMNS))
    for index, (heading, tag) in enumerate(AGING_COLUMNS):
        last = index == len(AGING_COLUMNS) - 1
        _cell_text(aging.cell(0, index), heading, right=True, bold=True)
        _shade(aging.cell(0, index), "DCE6EA")
        _cell_text(aging.cell(1, index), tag, right=True, size=9, bold=last)
        for row in (0, 1):
            _cell_margins(aging.cell(row, index), top=0.03, bottom=0.03, left=0.04, right=0.06)
    _no_split(aging)

    _paragraph(doc, _r("Please pay ", bold=True), _r("{{ amount_due }}", bold=True), _r(" by ", bold=True),
               _r("{{ due_date }}", bold=True), _r(".", bold=True), before=12, after=4, keep_with_next=True)
    _paragraph(doc, "You can pay in any of these ways:", after=4, keep_with_next=True)
    _bullets_of(doc, "payment_methods")
    _paragraph(
        doc,
        "If you cannot pay the whole amount now, please call us. We can set up a payment plan that works "
        "for you. If you have already paid, thank you, and please disregard this statement.",
        before=8,
        after=0,
    )
    return _save_deterministic(doc, path)


# --- the self-pay invoice ------------------------------------------------------------------------------

INVOICE_COLUMNS = [  # (heading, value tag, width in inches, right-aligned)
    ("Date", "{{ line.date }}", 0.85, False),
    ("Code", "{{ line.code }}", 0.7, False),
    ("Description", "{{ line.description }}", 3.55, False),
    ("Units", "{{ line.units }}", 0.6, True),
    ("Amount", "{{ line.amount }}", 0.8, True),
]


def _invoice_stub(cell: _Cell) -> None:
    """The payment stub beside the windows: what the patient sends back with the payment."""
    _paragraph(cell, _r("INVOICE", bold=True, size=13, color=ACCENT), after=4)
    for label, tag in (("Invoice date", "{{ invoice_date }}"), ("Invoice number", "{{ reference }}"),
                       ("Visit on", "{{ visit_date }}"), ("Please pay by", "{{ due_date }}")):
        _paragraph(cell, _r(f"{label}: ", size=9, color=GREY), _r(tag, size=9), after=0)
    _paragraph(cell, _r("Amount due: ", bold=True, size=11), _r("{{ amount_due }}", bold=True, size=11),
               before=3, after=5)
    _paragraph(cell, _r("Amount enclosed: $ ____________", size=10), after=5)
    _paragraph(cell, _r("Make checks payable to ", size=8, color=GREY),
               _r("{{ remit_to.name }}", size=8, color=GREY), after=0)
    _paragraph(cell, _r("and send them to: ", size=8, color=GREY),
               _r("{{ remit_to.address_lines|join(', ') }}", size=8, color=GREY), after=0)
    _paragraph(cell, _r("Write your invoice number on your check.", size=8, color=GREY), after=0)


def build_self_pay_invoice(path: Path, logo: Path) -> Path:
    """An itemised invoice for a visit paid by the patient: a payment stub at the top, the service lines
    (date, CPT code, plain description, units, amount), the total and how to pay."""
    doc = _base_document()
    _window_block(doc, "patient", logo, _invoice_stub)
    cut = _paragraph(
        doc,
        _r("Please detach along this line and return the top part with your payment.", size=8, color=GREY),
        before=6,
        after=10,
        align=WD_ALIGN_PARAGRAPH.CENTER,
    )
    _border(cut, "top", style="dashed", size=6, space=4)
    _paragraph(doc, _r("Your invoice from ", bold=True, size=13, color=ACCENT),
               _r("{{ practice.name }}", bold=True, size=13, color=ACCENT), after=2, keep_with_next=True)
    _paragraph(doc, _r("Invoice ", size=9, color=GREY), _r("{{ reference }}", size=9, color=GREY),
               _r(" for your visit on ", size=9, color=GREY), _r("{{ visit_date }}", size=9, color=GREY),
               _r(", dated ", size=9, color=GREY), _r("{{ invoice_date }}", size=9, color=GREY), after=8)
    _paragraph(
        doc,
        "You told us you pay for your care yourself. Here is each service of your visit and its price. If "
        "anything looks wrong, or you have a question about this bill, please call us at ",
        "{{ practice.phone }}",
        ". We are glad to help.",
        after=8,
    )
    widths = [w for _, _, w, _ in INVOICE_COLUMNS]
    lines = _fixed_table(doc, 5, widths)
    for cell, (heading, _, _, right) in zip(lines.rows[0].cells, INVOICE_COLUMNS, strict=True):
        _cell_text(cell, heading, right=right, bold=True)
        _shade(cell, "DCE6EA")
    _repeat_header(lines)
    _cell_text(lines.cell(1, 0), "{%tr for line in lines %}")
    for cell, (_, tag, _, right) in zip(lines.rows[2].cells, INVOICE_COLUMNS, strict=True):
        _cell_text(cell, tag, right=right, size=9)
    _cell_text(lines.cell(3, 0), "{%tr endfor %}")
    label = lines.cell(4, 0).merge(lines.cell(4, 3))
    _cell_text(label, "Total", bold=True, size=9)
    _cell_text(lines.cell(4, 4), "{{ total }}", right=True, bold=True, size=9)
    _shade(label, "F1F4F6")
    _shade(lines.cell(4, 4), "F1F4F6")
    for row in lines.rows:
        for cell in row.cells:
            _cell_margins(cell, top=0.03, bottom=0.03, left=0.04, right=0.04)
    _no_split(lines)
    _paragraph(doc, _r("Please pay ", bold=True), _r("{{ amount_due }}", bold=True), _r(" by ", bold=True),
               _r("{{ due_date }}", bold=True), _r(".", bold=True), before=12, after=4, keep_with_next=True)
    _paragraph(doc, "You can pay in any of these ways:", after=4, keep_with_next=True)
    _bullets_of(doc, "payment_methods")
    _paragraph(
        doc,
        "If you cannot pay the whole amount now, please call us. We can set up a payment plan that works "
        "for you. If you have already paid, thank you, and please disregard this invoice.",
        before=8,
        after=0,
    )
    return _save_deterministic(doc, path)


def _save_deterministic(doc: Any, path: Path) -> Path:
    """Save with fixed zip timestamps so rebuilding an unchanged template changes no bytes."""
    buffer = io.BytesIO()
    doc.save(buffer)
    buffer.seek(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return path


# --- Spanish ------------------------------------------------------------------------------------------

ES: dict[str, str] = {
    "Phone ": "Teléfono ",
    "Reference ": "Referencia ",
    "Your insurance information": "La información de su seguro",
    "Dear ": "Estimado/a ",
    "Thank you for choosing ": "Gracias por elegir ",
    ". We have looked over your new-patient paperwork, and we need a little more information about your health insurance. With it, we can send the bill for your care to your insurance company.":
        ". Revisamos sus formularios de paciente nuevo y necesitamos un poco más de información sobre su seguro médico. Con ella podemos enviar la factura de su atención a su compañía de seguros.",
    "Here is what we still need:": "Esto es lo que todavía necesitamos:",
    "All of this is on your insurance card. You can get it to us in whichever way is easiest for you:":
        "Todo esto aparece en su tarjeta de seguro. Puede hacérnoslo llegar de la forma que le resulte más fácil:",
    "Bring your card": "Traiga su tarjeta",
    " to your appointment. We will make a copy at the front desk.": " a su cita. Haremos una copia en la recepción.",
    "Call us": "Llámenos",
    " at ": " al ",
    " and read us the information on your card.": " y léanos la información de su tarjeta.",
    "Mail a copy": "Envíe por correo una copia",
    " of the front and back of your card to ": " del frente y del reverso de su tarjeta a ",
    "Your appointment is not affected.": "Su cita no cambia.",
    " Please keep it as planned. If you do not have insurance, or you would rather pay for your care yourself, just call and let us know. If you have already sent us this information, thank you; there is nothing more you need to do.":
        " Por favor, manténgala como está prevista. Si no tiene seguro, o prefiere pagar su atención usted mismo/a, llámenos y avísenos. Si ya nos envió esta información, gracias; no necesita hacer nada más.",
    "If you have any questions, we are happy to help. When you call, please mention the reference number at the bottom of this letter.":
        "Si tiene alguna pregunta, con gusto le ayudamos. Cuando llame, mencione por favor el número de referencia que aparece al pie de esta carta.",
    "Kind regards,": "Atentamente,",
    "Front Desk, ": "Recepción, ",
    "Reference: ": "Referencia: ",
    "A few details are missing from your forms": "Faltan algunos datos en sus formularios",
    "Thank you for filling in your new-patient forms for ": "Gracias por completar sus formularios de paciente nuevo para ",
    ". When we looked them over, we found that a few answers are missing or hard to read:":
        ". Al revisarlos, vimos que faltan algunas respuestas o que son difíciles de leer:",
    "You can help us in whichever way is easiest for you:": "Puede ayudarnos de la forma que le resulte más fácil:",
    ". We can fill in the answers with you over the phone; it only takes a few minutes.":
        ". Podemos completar las respuestas con usted por teléfono; solo toma unos minutos.",
    "Tell us at your visit.": "Díganoslo en su visita.",
    " Please come a few minutes early so we have time to go through it together.":
        " Por favor, llegue unos minutos antes para que tengamos tiempo de revisarlo juntos.",
    "We ask because complete records help us take good care of you and make sure your visits are billed correctly. ":
        "Se lo pedimos porque un expediente completo nos ayuda a cuidarle bien y a facturar sus visitas correctamente. ",
    " If you have already sent us this information, thank you; there is nothing more you need to do.":
        " Si ya nos envió esta información, gracias; no necesita hacer nada más.",
    "Your appointment on ": "Su cita del ",
    "This is a friendly reminder of your next visit with us:": "Le recordamos amablemente su próxima visita con nosotros:",
    "with ": "con ",
    "Please bring:": "Por favor, traiga:",
    "Your insurance card and a photo ID": "Su tarjeta de seguro y una identificación con foto",
    "A list of the medicines you take, with their doses (vitamins and supplements too)":
        "Una lista de los medicamentos que toma, con sus dosis (también vitaminas y suplementos)",
    "Your glasses or hearing aids, if you use them": "Sus anteojos o audífonos, si los usa",
    "Before or at your visit, please also:": "Antes de su visita o durante ella, por favor también:",
    "Please arrive 15 minutes early so we have time to check you in. If you cannot come, please call us at ":
        "Por favor, llegue 15 minutos antes para que tengamos tiempo de registrarle. Si no puede venir, llámenos al ",
    " as soon as you can: we will find you a new time and offer yours to someone who is waiting.":
        " lo antes posible: le daremos una nueva hora y ofreceremos la suya a alguien que está esperando.",
    "We look forward to seeing you.": "Esperamos verle pronto.",
    "Welcome to ": "Bienvenido/a a ",
    "Thank you for choosing us for your care. We are glad to have you as a patient, and we want your first visit to be easy and unhurried.":
        "Gracias por elegirnos para su atención. Nos alegra tenerle como paciente y queremos que su primera visita sea fácil y sin prisas.",
    "Before your first visit": "Antes de su primera visita",
    "Fill in the new-patient forms, if you have not done so yet. Ask us if you need a copy.":
        "Complete los formularios de paciente nuevo, si todavía no lo ha hecho. Pídanos una copia si la necesita.",
    "Write down the medicines you take, with their doses, including vitamins and supplements.":
        "Anote los medicamentos que toma, con sus dosis, incluidas vitaminas y suplementos.",
    "Note any questions you would like to ask; it is easy to forget them in the room.":
        "Anote las preguntas que quiera hacer; es fácil olvidarlas en el consultorio.",
    "Please bring": "Por favor, traiga",
    "Your list of medicines": "Su lista de medicamentos",
    "Recent test results or records from other doctors, if you have them":
        "Resultados de análisis recientes o expedientes de otros médicos, si los tiene",
    "Please arrive 15 minutes before your appointment so we can check you in without rushing. If you need to change or cancel a visit, call us at ":
        "Por favor, llegue 15 minutos antes de su cita para registrarle sin prisas. Si necesita cambiar o cancelar una visita, llámenos al ",
    ", at least a day ahead if you can.": ", al menos con un día de anticipación si puede.",
    "You can call us with any question about your care, your appointments or your bill. ":
        "Puede llamarnos con cualquier pregunta sobre su atención, sus citas o su factura. ",
    "In an emergency, call 911.": "En caso de emergencia, llame al 911.",
    "We look forward to meeting you.": "Esperamos conocerle pronto.",
    "STATEMENT": "ESTADO DE CUENTA",
    "Statement date: ": "Fecha del estado de cuenta: ",
    "Account number: ": "Número de cuenta: ",
    "Please pay by: ": "Pague a más tardar el: ",
    "Amount due: ": "Monto a pagar: ",
    "Amount enclosed: $ ____________": "Monto adjunto: $ ____________",
    "Make checks payable to ": "Emita los cheques a nombre de ",
    "and send them to: ": "y envíelos a: ",
    "Write your account number on your check.": "Escriba su número de cuenta en el cheque.",
    "Please detach along this line and return the top part with your payment.":
        "Por favor, corte por esta línea y devuelva la parte superior con su pago.",
    "Your statement from ": "Su estado de cuenta de ",
    "Statement ": "Estado de cuenta ",
    " for account ": " de la cuenta ",
    ", dated ": ", con fecha ",
    "Here is the care you received and what is left to pay after your insurance. If anything looks wrong, or you have a question about this bill, please call us at ":
        "Esta es la atención que recibió y lo que queda por pagar después de su seguro. Si algo no parece correcto, o tiene alguna pregunta sobre esta factura, llámenos al ",
    ". We are glad to help.": ". Con gusto le ayudamos.",
    "Date": "Fecha",
    "Patient": "Paciente",
    "Code": "Código",
    "Description": "Descripción",
    "Charges": "Cargos",
    "Insurance paid": "Pagado por el seguro",
    "Adjust- ments": "Ajustes",
    "You paid": "Usted pagó",
    "Balance": "Saldo",
    "Totals": "Totales",
    "INVOICE": "FACTURA",
    "Invoice date: ": "Fecha de la factura: ",
    "Invoice number: ": "Número de factura: ",
    "Visit on: ": "Visita del: ",
    "Write your invoice number on your check.": "Escriba su número de factura en el cheque.",
    "Your invoice from ": "Su factura de ",
    "Invoice ": "Factura ",
    " for your visit on ": " por su visita del ",
    "You told us you pay for your care yourself. Here is each service of your visit and its price. If anything looks wrong, or you have a question about this bill, please call us at ":
        "Usted nos indicó que paga su atención por su cuenta. Este es cada servicio de su visita y su precio. Si algo no parece correcto, o tiene alguna pregunta sobre esta factura, llámenos al ",
    "Units": "Unidades",
    "Amount": "Importe",
    "Total": "Total",
    "If you cannot pay the whole amount now, please call us. We can set up a payment plan that works for you. If you have already paid, thank you, and please disregard this invoice.":
        "Si no puede pagar el monto completo ahora, llámenos. Podemos acordar un plan de pagos que le convenga. Si ya pagó, gracias; por favor, no tenga en cuenta esta factura.",
    "How old the balance is": "Antigüedad del saldo",
    "Current": "Corriente",
    "31 to 60 days": "31 a 60 días",
    "61 to 90 days": "61 a 90 días",
    "Over 90 days": "Más de 90 días",
    "Amount due": "Monto a pagar",
    "Please pay ": "Por favor, pague ",
    " by ": " a más tardar el ",
    "You can pay in any of these ways:": "Puede pagar de cualquiera de estas formas:",
    "If you cannot pay the whole amount now, please call us. We can set up a payment plan that works for you. If you have already paid, thank you, and please disregard this statement.":
        "Si no puede pagar el monto completo ahora, llámenos. Podemos acordar un plan de pagos que le convenga. Si ya pagó, gracias; por favor, no tenga en cuenta este estado de cuenta.",
}


BUILDERS: dict[str, Callable[[Path, Path], Path]] = {
    "missing_insurance.docx": build_missing_insurance,
    "incomplete_intake.docx": build_incomplete_intake,
    "appointment_reminder.docx": build_appointment_reminder,
    "welcome.docx": build_welcome,
    "patient_statement.docx": build_patient_statement,
    "self_pay_invoice.docx": build_self_pay_invoice,
}


def write_logo(out_dir: Path) -> Path:
    logo = out_dir / LOGO_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    data = placeholder_logo_png()
    if not logo.is_file() or logo.read_bytes() != data:
        logo.write_bytes(data)
    return logo


def build_all(out_dir: Path) -> list[Path]:
    """The placeholder logo, then every template (each embeds the logo as its placeholder), in English
    in ``out_dir`` and in Spanish in ``out_dir/es`` (a practice in the US gets both)."""
    global _LANGUAGE
    logo = write_logo(out_dir)
    built = [builder(out_dir / name, logo) for name, builder in BUILDERS.items()]
    try:
        _LANGUAGE = "es"
        built += [builder(out_dir / "es" / name, logo) for name, builder in BUILDERS.items()]
    finally:
        _LANGUAGE = "en"
    return built


def preview(templates: list[Path], out_dir: Path) -> list[Path]:
    """Render each template with fictional data, convert to PDF and rasterise, for a person to look at."""
    from frontdesk.convert import docx_to_pdf
    from frontdesk.letters.kinds import kind_for_template, sample_context
    from frontdesk.rendering import check_template, render_docx

    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = []
    for template in templates:
        sample = sample_context(kind_for_template(template))
        problems = check_template(template, sample)
        if problems:
            raise SystemExit("\n".join(problems))
        rendered.append(render_docx(template, sample, out_dir / f"{template.stem}-sample.docx"))
    pngs = []
    for pdf in docx_to_pdf(rendered, out_dir):
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(pdf.with_suffix(""))], check=True)
        pngs.extend(sorted(out_dir.glob(f"{pdf.stem}*.png")))
    return pngs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=LETTERS_DIR, help="where to write the templates")
    parser.add_argument("--preview", type=Path, help="also render samples (docx, PDF, PNG) into this folder")
    args = parser.parse_args(argv)
    built = build_all(args.out)
    for path in built:
        print(f"wrote {path}")
    if args.preview:
        for png in preview(built, args.preview):
            print(f"preview {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

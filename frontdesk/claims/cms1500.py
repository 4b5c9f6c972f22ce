"""CMS-1500 (02/12) on paper: data only, placed for the pre-printed red form, plus a preview.

Payers scan the red form with drop-out ink: the red disappears and only the data is read, so Frontdesk
prints the data and nothing else, on a grid of 10 characters an inch and 6 lines an inch (the grid the
NUCC form is printed on: 85 columns, 66 lines). Printers feed paper a little differently: the alignment
page prints marks where boxes 1a, 2, 21 and 24 start, and ``claims.printers.<name>`` holds that
printer's offset in points. The preview draws the form's boxes and labels, so the person who checks a
claim sees every value in its box before the red forms are loaded.

Each form holds up to 12 diagnosis codes (21 A-L) and 6 service lines (24); a longer claim continues on
further forms, each with the diagnoses its own lines point at, and box 28 carries the total on the last.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from reportlab.lib.colors import Color, black
from reportlab.pdfgen.canvas import Canvas

from frontdesk.claims.claim837 import Claim
from frontdesk.claims.ledger import ServiceLine
from frontdesk.settings import PrinterOffset, Settings

PAGE_W, PAGE_H = 612.0, 792.0
CHAR_W, LINE_H = 7.2, 12.0  # 10 cpi, 6 lpi
LEFT = 18.0  # column 1 sits a quarter inch in: printers cannot print at the paper's edge
LAST_COLUMN = 79  # nothing past here: the right quarter inch is outside most printers' reach too
FONT, FONT_SIZE = "Courier", 10.0
RED = Color(0.85, 0.1, 0.1)
MAX_DX, MAX_LINES = 12, 6
SERVICE_ROWS = (43, 45, 47, 49, 51, 53)


@dataclass(frozen=True)
class Box:
    """A field's box on the form: line (1-66, top down) and first column (1-85), width in characters."""

    label: str
    line: int
    col: int
    width: int

    def rect(self) -> tuple[float, float, float, float]:
        """(x0, top, x1, bottom) in PDF points measured from the top, as pdfplumber reports them."""
        x0 = LEFT + (self.col - 1) * CHAR_W
        return (x0, (self.line - 1) * LINE_H, x0 + self.width * CHAR_W, self.line * LINE_H)


BOXES: dict[str, Box] = {
    "payer_name": Box("CARRIER: PAYER", 2, 50, 33),
    "payer_id": Box("CARRIER: PAYER ID", 3, 50, 33),
    "page": Box("PAGE", 4, 50, 33),
    "1_type": Box("1. TYPE OF COVERAGE", 8, 1, 48),
    "1a_member_id": Box("1a. INSURED'S I.D. NUMBER", 8, 50, 30),
    "2_patient_name": Box("2. PATIENT'S NAME", 10, 1, 29),
    "3_dob": Box("3. PATIENT'S BIRTH DATE", 10, 31, 10),
    "3_sex": Box("3. SEX", 10, 42, 7),
    "4_insured_name": Box("4. INSURED'S NAME", 10, 50, 33),
    "5_street": Box("5. PATIENT'S ADDRESS", 12, 1, 29),
    "6_relationship": Box("6. PATIENT RELATIONSHIP TO INSURED", 12, 31, 18),
    "7_street": Box("7. INSURED'S ADDRESS", 12, 50, 33),
    "5_city": Box("5. CITY", 14, 1, 26),
    "5_state": Box("5. STATE", 14, 28, 3),
    "7_city": Box("7. CITY", 14, 50, 27),
    "7_state": Box("7. STATE", 14, 78, 3),
    "5_zip": Box("5. ZIP CODE", 16, 1, 12),
    "5_phone": Box("5. TELEPHONE", 16, 14, 16),
    "7_zip": Box("7. ZIP CODE", 16, 50, 12),
    "11_group": Box("11. INSURED'S POLICY GROUP", 18, 50, 33),
    "11a_dob": Box("11a. INSURED'S DATE OF BIRTH", 20, 52, 12),
    "11a_sex": Box("11a. SEX", 20, 66, 14),
    "11c_plan": Box("11c. INSURANCE PLAN NAME", 24, 50, 33),
    "12_signature": Box("12. PATIENT'S SIGNATURE", 28, 5, 28),
    "13_signature": Box("13. INSURED'S SIGNATURE", 28, 55, 28),
    "21_indicator": Box("21. ICD IND.", 36, 36, 3),
    "26_account": Box("26. PATIENT'S ACCOUNT NO.", 56, 23, 14),
    "25_tax_id": Box("25. FEDERAL TAX I.D. NUMBER", 56, 1, 15),
    "25_ein": Box("25. EIN", 56, 18, 3),
    "27_assignment": Box("27. ACCEPT ASSIGNMENT", 56, 38, 10),
    "28_total": Box("28. TOTAL CHARGE", 56, 50, 12),
    "29_paid": Box("29. AMOUNT PAID", 56, 63, 10),
    "31_signature": Box("31. SIGNATURE OF PHYSICIAN", 60, 1, 21),
    "33_name": Box("33. BILLING PROVIDER INFO", 58, 50, 33),
    "33_street": Box("33. ADDRESS", 59, 50, 33),
    "33_city": Box("33. CITY STATE ZIP", 60, 50, 33),
    "33_phone": Box("33. PHONE", 57, 66, 16),
    "33a_npi": Box("33a. NPI", 61, 50, 11),
}
for _i, _letter in enumerate("ABCDEFGHIJKL"):
    BOXES[f"21_{_letter}"] = Box(f"21. {_letter}", 37 + _i // 4, 3 + 13 * (_i % 4), 10)
for _n, _row in enumerate(SERVICE_ROWS, 1):
    BOXES[f"24_{_n}_from"] = Box(f"24A. FROM ({_n})", _row, 1, 8)
    BOXES[f"24_{_n}_to"] = Box(f"24A. TO ({_n})", _row, 10, 8)
    BOXES[f"24_{_n}_pos"] = Box(f"24B. POS ({_n})", _row, 19, 2)
    BOXES[f"24_{_n}_cpt"] = Box(f"24D. CPT/HCPCS ({_n})", _row, 25, 6)
    BOXES[f"24_{_n}_mod"] = Box(f"24D. MODIFIER ({_n})", _row, 32, 12)
    BOXES[f"24_{_n}_pointer"] = Box(f"24E. DIAGNOSIS POINTER ({_n})", _row, 45, 4)
    BOXES[f"24_{_n}_charge"] = Box(f"24F. $ CHARGES ({_n})", _row, 50, 9)
    BOXES[f"24_{_n}_units"] = Box(f"24G. DAYS OR UNITS ({_n})", _row, 60, 4)
    BOXES[f"24_{_n}_npi"] = Box(f"24J. RENDERING NPI ({_n})", _row, 67, 11)

BOXES = {k: Box(b.label, b.line, b.col, min(b.width, LAST_COLUMN - b.col + 1)) for k, b in BOXES.items()}

#: Boxes whose value must never be cut to fit (names may be; the payer reads them as abbreviated).
STRICT = ("1a_member_id", "11_group", "25_tax_id", "26_account", "33a_npi")

RELATION_WORDS = {"18": "SELF", "01": "SPOUSE", "19": "CHILD", "G8": "OTHER"}


def _mdy(d: object) -> str:
    from datetime import date

    return d.strftime("%m %d %Y") if isinstance(d, date) else ""


def _money(d: Decimal) -> str:
    return f"{d:.2f}".replace(".", " ")  # dollars and cents sit either side of the form's dividing line


def split_forms(lines: Sequence[ServiceLine]) -> list[tuple[list[ServiceLine], list[str]]]:
    """Service lines per form (at most 6) with that form's diagnoses (at most 12): a new form starts when
    either would overflow, so every pointer on a form points at a code printed on it."""
    forms: list[tuple[list[ServiceLine], list[str]]] = []
    cur: list[ServiceLine] = []
    dx: list[str] = []
    for line in lines:
        new_dx = [d for d in line.diagnoses[:4] if d not in dx]
        if cur and (len(cur) >= MAX_LINES or len(dx) + len(new_dx) > MAX_DX):
            forms.append((cur, dx))
            cur, dx = [], []
            new_dx = [d for d in line.diagnoses[:4] if d not in dx]
        cur.append(line)
        dx.extend(new_dx)
    if cur:
        forms.append((cur, dx))
    return forms


def form_values(claim: Claim, settings: Settings) -> list[dict[str, str]]:
    """The text of every box, one dict per form (continuation forms included)."""
    b = settings.claims.billing
    forms = split_forms(claim.visit.lines)
    total = claim.visit.total
    out: list[dict[str, str]] = []
    for page, (lines, dx) in enumerate(forms, 1):
        v: dict[str, str] = {
            "payer_name": claim.payer_name.upper(),
            "payer_id": f"PAYER ID {claim.payer_id}",
            "1_type": {"MB": "MEDICARE", "MC": "MEDICAID", "CH": "TRICARE"}.get(claim.filing_indicator, "GROUP HEALTH PLAN"),
            "1a_member_id": claim.member_id,
            "2_patient_name": f"{claim.patient_last}, {claim.patient_first}".upper(),
            "3_dob": _mdy(claim.patient_dob),
            "3_sex": {"F": "F", "M": "M"}.get(claim.patient_sex, ""),
            "4_insured_name": f"{claim.subscriber_last}, {claim.subscriber_first}".upper(),
            "5_street": claim.address["street"].upper(),
            "6_relationship": RELATION_WORDS.get(claim.relationship, "OTHER"),
            "5_city": claim.address["city"].upper(),
            "5_state": claim.address["state"].upper(),
            "5_zip": claim.address["zip"],
            "5_phone": claim.phone,
            "11_group": claim.group_number.upper(),
            "11a_dob": _mdy(claim.subscriber_dob),
            "11c_plan": claim.payer_name.upper(),
            "12_signature": "SIGNATURE ON FILE",
            "13_signature": "SIGNATURE ON FILE",
            "21_indicator": "0",
            "25_tax_id": b.tax_id.replace("-", ""),
            "25_ein": "X",
            "26_account": claim.claim_id,
            "27_assignment": "YES",
            "28_total": _money(total) if page == len(forms) else "CONTINUED",
            "31_signature": "SIGNATURE ON FILE",
            "33_name": (b.name or settings.practice.name).upper(),
            "33_street": b.street.upper(),
            "33_city": f"{b.city} {b.state} {b.zip}".upper(),
            "33_phone": b.phone,
            "33a_npi": b.npi,
        }
        if claim.patient_is_subscriber:
            v.update({"7_street": v["5_street"], "7_city": v["5_city"], "7_state": v["5_state"],
                      "7_zip": v["5_zip"]})
        if len(forms) > 1:
            v["page"] = f"PAGE {page} OF {len(forms)}"
        for i, code in enumerate(dx):
            v[f"21_{'ABCDEFGHIJKL'[i]}"] = code[:3] + "." + code[3:] if len(code) > 3 else code
        for n, line in enumerate(lines, 1):
            v[f"24_{n}_from"] = line.date_of_service.strftime("%m %d %y")
            v[f"24_{n}_to"] = line.date_of_service.strftime("%m %d %y")
            v[f"24_{n}_pos"] = claim.place_of_service
            v[f"24_{n}_cpt"] = line.code
            v[f"24_{n}_mod"] = " ".join(line.modifiers)
            v[f"24_{n}_pointer"] = "".join("ABCDEFGHIJKL"[dx.index(d)] for d in line.diagnoses[:4])
            v[f"24_{n}_charge"] = _money(line.charge)
            v[f"24_{n}_units"] = f"{line.units.normalize():f}"
            if claim.visit.rendering_npi:
                v[f"24_{n}_npi"] = claim.visit.rendering_npi
        for key in STRICT:
            box = BOXES[key]
            if len(v.get(key, "")) > box.width:
                from frontdesk.claims.errors import ClaimRefused

                raise ClaimRefused([f"claim {claim.claim_id}: box {box.label} holds {box.width} characters and the "
                                    "value is longer: an identifier cut short would be a wrong claim"])
        out.append({k: x for k, x in v.items() if x})
    return out


def _fit(text: str, box: Box) -> str:
    """Never past the box: a value too long for its box is cut, as a typewriter would."""
    return text[: box.width]


def _draw_values(c: Canvas, values: dict[str, str], offset: PrinterOffset) -> None:
    c.setFillColor(black)
    c.setFont(FONT, FONT_SIZE)
    for key, text in values.items():
        box = BOXES[key]
        x0, _, _, bottom = box.rect()
        c.drawString(x0 + offset.x + 1, PAGE_H - bottom + 3 + offset.y, _fit(text, box))


def _draw_form(c: Canvas) -> None:
    """The form's boxes and labels in red, for the preview only."""
    c.setStrokeColor(RED)
    c.setFillColor(RED)
    c.setLineWidth(0.5)
    c.setFont("Helvetica", 4.5)
    for box in BOXES.values():
        x0, top, x1, bottom = box.rect()
        c.rect(x0, PAGE_H - bottom, x1 - x0, bottom - top, stroke=1, fill=0)
        c.drawString(x0 + 0.8, PAGE_H - top - 4.5, box.label[:60])
    c.setFont("Helvetica-Bold", 11)
    c.drawString(36, PAGE_H - 14, "HEALTH INSURANCE CLAIM FORM")
    c.setFont("Helvetica", 6)
    c.drawString(36, PAGE_H - 22, "APPROVED BY NATIONAL UNIFORM CLAIM COMMITTEE (NUCC) 02/12 - PREVIEW, NOT FOR SUBMISSION")


def render_pdf(claims: Sequence[Claim], settings: Settings, *, preview: bool = False,
               printer: str = "default") -> bytes:
    """All forms of the claims in one PDF: data only for the red forms, or with the form drawn."""
    offset = settings.claims.printers.get(printer)
    if offset is None:
        from frontdesk.claims.errors import BillingConfigError

        raise BillingConfigError(f"claims.printers: no printer named '{printer}'")
    if preview:
        offset = PrinterOffset()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(PAGE_W, PAGE_H), invariant=True)
    c.setTitle("CMS-1500 preview" if preview else "CMS-1500 data")
    for claim in claims:
        for values in form_values(claim, settings):
            if preview:
                _draw_form(c)
            _draw_values(c, values, offset)
            c.showPage()
    c.save()
    return buf.getvalue()


def alignment_page(settings: Settings, *, printer: str = "default") -> bytes:
    """A test page for a red form: crosshairs where boxes 1a, 2, 21 A and 24 (line 1) begin, and how to
    read the offset. Staff print it on a blank red form, measure, and set ``claims.printers``."""
    offset = settings.claims.printers.get(printer, PrinterOffset())
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(PAGE_W, PAGE_H), invariant=True)
    c.setFont(FONT, FONT_SIZE)
    marks = ["1a_member_id", "2_patient_name", "21_A", "24_1_from", "24_6_charge", "33a_npi"]
    for key in marks:
        box = BOXES[key]
        x0, _, _, bottom = box.rect()
        x, y = x0 + offset.x + 1, PAGE_H - bottom + 3 + offset.y
        c.line(x - 6, y, x + 6, y)
        c.line(x, y - 6, x, y + 6)
        c.drawString(x + 4, y + 2, "X" * min(box.width - 1, 10))
    c.setFont("Helvetica", 8)
    c.drawString(40, PAGE_H - 8 * LINE_H + 14,
                 f"ALIGNMENT TEST - printer '{printer}' offset x={offset.x:+.1f} pt, y={offset.y:+.1f} pt")
    c.drawString(40, PAGE_H - 30 * LINE_H,
                 "Each cross must sit on the lower left corner of its box. Measure how far it is off: 1 mm = 2.83 pt.")
    c.drawString(40, PAGE_H - 30 * LINE_H - 10,
                 "Too far left: add to x. Too low: add to y. Set claims.printers.<name> in config/frontdesk.yaml.")
    c.showPage()
    c.save()
    return buf.getvalue()

"""Build the practice's fillable forms: New Patient Intake (``templates/forms/new_patient_intake.pdf``)
and Medical History (``templates/forms/medical_history.pdf``).

The form is generated rather than drawn by hand so that its AcroForm field names can never drift from
``config/fields.yaml``: every canonical key must appear exactly once as a field, and the build fails if
the vocabulary grows a key the layout does not place.

Design choices that the rest of Frontdesk relies on:

* Field names ARE the canonical keys (flat names containing dots, e.g. ``patient.first_name``).
* Box outlines are printed in the page content, and widgets have no fill and no border of their own.
  A flattened or printed-and-scanned copy therefore still shows the boxes, and nothing paints over the
  text a filler draws inside a widget rectangle.
* Printed labels sit at least ``LABEL_CLEARANCE`` points outside every widget rectangle, because
  extraction reads whatever text falls inside a rectangle and must not pick up a label.
* Repeating groups (``groups`` in fields.yaml: medications, allergies, conditions) are tables of
  N rows whose boxes are named ``<group>.<row>.<field>``; check lists (``checklists``) are grids of
  check boxes named ``<list>.<option>``. The medical history form must place every group and check list
  of the vocabulary, so the build fails when the vocabulary grows one the layout does not carry.
* Output is byte-for-byte deterministic (reportlab ``invariant=1``), so the committed PDF only changes
  when the layout or the practice header changes.

Run from the repository root: ``python scripts/build_forms.py`` (``--out`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

REPO = Path(__file__).resolve().parents[1]
FIELDS_YAML = REPO / "config" / "fields.yaml"
FRONTDESK_YAML = REPO / "config" / "frontdesk.yaml"
OUTPUT = REPO / "templates" / "forms" / "new_patient_intake.pdf"

FORM_TITLE = "New Patient Intake Form"
FORM_ID = "Form NPI-1 (rev. 2026-11)"

DEFAULT_PRACTICE: dict[str, Any] = {
    "name": "Riverside Family Medicine",
    "address_lines": ["120 Main Street", "Springfield, IL 62701"],
    "phone": "(217) 555-0142",
}

PAGE_W, PAGE_H = letter
MARGIN_X = 48.0
CONTENT_W = PAGE_W - 2 * MARGIN_X  # 516 pt
GAP = 10.0  # horizontal gap between boxes in a row

BOX_H = 20.0
CHECK_SIZE = 12.0
LABEL_FONT = "Helvetica"
LABEL_SIZE = 8.0
LABEL_BASELINE_ABOVE_BOX = 7.0  # baseline of a label, above the top edge of its box
LABEL_CLEARANCE = 4.0  # minimum white space between any widget rectangle and printed text
ROW_GAP = 11.5  # space between the bottom of one row of boxes and the labels of the next
FIELD_FONT_SIZE = 10

INK = Color(0.12, 0.12, 0.12)
LABEL_INK = Color(0.22, 0.22, 0.22)
HINT_INK = Color(0.42, 0.42, 0.42)
BOX_INK = Color(0.35, 0.35, 0.35)
BAND_FILL = Color(0.90, 0.92, 0.95)
RULE_INK = Color(0.55, 0.60, 0.68)


@dataclass(frozen=True)
class Box:
    """One field in a row: the canonical key, its width, and optional label overrides."""

    key: str
    width: float
    label: str | None = None  # defaults to the label in fields.yaml
    hint: str | None = None  # smaller grey text after the label, e.g. a date format


# The layout. Each inner list is one row of boxes whose widths (plus GAPs) add up to CONTENT_W.
PATIENT_ROWS: list[list[Box]] = [
    [
        Box("patient.last_name", 170),
        Box("patient.first_name", 150),
        Box("patient.date_of_birth", 110, hint="MM/DD/YYYY"),
        Box("patient.sex", 56, hint="F / M / X"),
    ],
    [Box("patient.phone", 140), Box("patient.email", 236), Box("patient.preferred_language", 120)],
    [Box("patient.address.street", 516, hint="number, street, apt.")],
    [Box("patient.address.city", 336), Box("patient.address.state", 50), Box("patient.address.zip", 110)],
]
EMERGENCY_ROWS: list[list[Box]] = [
    [Box("emergency_contact.name", 230, label="Name"), Box("emergency_contact.relationship", 120, label="Relationship"),
     Box("emergency_contact.phone", 146, label="Phone")],
]
PRIMARY_ROWS: list[list[Box]] = [
    [
        Box("insurance.primary.payer_name", 256),
        Box("insurance.primary.member_id", 150),
        Box("insurance.primary.group_number", 90),
    ],
    [
        Box("insurance.primary.subscriber_name", 236),
        Box("insurance.primary.subscriber_date_of_birth", 110, label="Subscriber date of birth"),
        Box("insurance.primary.relationship_to_patient", 150, label="Relationship to patient"),
    ],
]
SECONDARY_ROWS: list[list[Box]] = [
    [
        Box("insurance.secondary.payer_name", 256, label="Insurance company (payer)"),
        Box("insurance.secondary.member_id", 150, label="Member ID"),
        Box("insurance.secondary.group_number", 90, label="Group number"),
    ],
]
SIGNATURE_ROW: list[Box] = [
    Box("consent.signature", 356, label="Signature (type or sign your full name)"),
    Box("consent.date", 150, hint="MM/DD/YYYY"),
]
SELF_PAY_KEY = "insurance.self_pay"
HIPAA_KEY = "consent.hipaa_acknowledgment"
RELATIONSHIP_HINT = "Self, Spouse, Child, Parent or Other"

PRIVACY_TEXT = (
    "Notice of Privacy Practices. {name} keeps a Notice of Privacy Practices that describes how "
    "medical information about you may be used and disclosed, and how you can get access to it, as "
    "required by the Health Insurance Portability and Accountability Act (HIPAA). You may ask the front "
    "desk for a copy at any time. Your information on this form is kept confidential and is used only "
    "for your care, payment and our health care operations."
)


def load_fields(path: Path = FIELDS_YAML, form: str | None = None) -> dict[str, dict[str, Any]]:
    """The canonical vocabulary less the fields only cards and letters carry (``intake: false``); the
    form must carry exactly these keys. ``form`` None: the registration form's (keys without ``form:``);
    else the keys of that form (see :data:`OTHER_FORMS`)."""
    with path.open(encoding="utf-8") as fh:
        fields = yaml.safe_load(fh)["fields"]
    return {k: spec for k, spec in fields.items() if spec.get("intake", True) and spec.get("form") == form}


def load_practice(path: Path = FRONTDESK_YAML) -> dict[str, Any]:
    """The practice header, from the deployment's config when it exists, else the demo practice."""
    practice = dict(DEFAULT_PRACTICE)
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        configured = data.get("practice") or {}
        for key in ("name", "address_lines", "phone"):
            if configured.get(key):
                practice[key] = configured[key]
    practice["address_lines"] = [str(line) for line in practice["address_lines"]]
    return practice


def _is_required(spec: dict[str, Any]) -> bool:
    return spec.get("required") in ("always", "unless_self_pay")


class FormBuilder:
    """Draws the page top-down, keeping a cursor ``y`` (the top of the next thing to draw)."""

    title = FORM_TITLE
    form_id = FORM_ID

    def __init__(self, canvas: Canvas, fields: dict[str, dict[str, Any]]) -> None:
        self.c = canvas
        self.fields = fields
        self.placed: list[str] = []
        self.y = PAGE_H - 40.0
        self.title = FORM_TITLE

    # -- primitives ---------------------------------------------------------------------------------

    def _label(self, x: float, baseline: float, text: str, hint: str | None, max_width: float) -> None:
        c = self.c
        c.setFillColor(LABEL_INK)
        c.setFont(LABEL_FONT, LABEL_SIZE)
        c.drawString(x, baseline, text)
        if hint:
            used = stringWidth(text, LABEL_FONT, LABEL_SIZE) + 4
            hint_text = f"({hint})"
            if used + stringWidth(hint_text, LABEL_FONT, 7) <= max_width:
                c.setFillColor(HINT_INK)
                c.setFont(LABEL_FONT, 7)
                c.drawString(x + used, baseline, hint_text)

    def _text_field(self, box: Box, x: float, y: float) -> None:
        spec = self.fields[box.key]
        if spec["type"] == "checkbox":
            raise ValueError(f"{box.key} is a checkbox in fields.yaml but the layout draws a text box")
        label = box.label or spec["label"]
        if _is_required(spec):
            label += " *"
        self._label(x, y + BOX_H + LABEL_BASELINE_ABOVE_BOX, label, box.hint, box.width)
        c = self.c
        c.setStrokeColor(BOX_INK)
        c.setLineWidth(0.6)
        c.rect(x, y, box.width, BOX_H, stroke=1, fill=0)
        c.acroForm.textfield(
            name=box.key,
            tooltip=label.rstrip(" *"),
            value="",
            x=x,
            y=y,
            width=box.width,
            height=BOX_H,
            fontName="Helvetica",
            fontSize=FIELD_FONT_SIZE,
            textColor=black,
            fillColor=None,
            borderColor=None,
            borderWidth=0,
            maxlen=0,
            fieldFlags="",
        )
        self.placed.append(box.key)

    def _checkbox(self, key: str, x: float, text: str, bold_prefix: str | None = None) -> None:
        """A checkbox with its statement printed to the right, wrapped if long."""
        if self.fields[key]["type"] != "checkbox":
            raise ValueError(f"{key} is not a checkbox in fields.yaml but the layout draws one")
        c = self.c
        top = self.y
        y = top - CHECK_SIZE
        c.setStrokeColor(BOX_INK)
        c.setLineWidth(0.8)
        c.rect(x, y, CHECK_SIZE, CHECK_SIZE, stroke=1, fill=0)
        c.acroForm.checkbox(
            name=key,
            tooltip=self.fields[key]["label"],
            checked=False,
            buttonStyle="check",
            shape="square",
            x=x,
            y=y,
            size=CHECK_SIZE,
            fillColor=None,
            borderColor=None,
            textColor=black,
            borderWidth=0,
            fieldFlags="",
        )
        self.placed.append(key)
        text_x = x + CHECK_SIZE + 8
        width = MARGIN_X + CONTENT_W - text_x
        size = 9.0
        lines = simpleSplit(text, LABEL_FONT, size, width)
        baseline = y + CHECK_SIZE / 2 - 0.26 * size
        for i, line in enumerate(lines):
            c.setFillColor(INK)
            c.setFont(LABEL_FONT, size)
            c.drawString(text_x, baseline - i * (size + 2.5), line)
        self.y = min(y, baseline - (len(lines) - 1) * (size + 2.5) - 3) - 12

    def _rows(self, rows: list[list[Box]]) -> None:
        for row in rows:
            total = sum(b.width for b in row) + GAP * (len(row) - 1)
            if abs(total - CONTENT_W) > 0.01:
                raise ValueError(f"layout row {[b.key for b in row]} is {total} pt wide, not {CONTENT_W}")
            label_top = LABEL_BASELINE_ABOVE_BOX + LABEL_SIZE * 0.75
            y = self.y - label_top - BOX_H
            x = MARGIN_X
            for box in row:
                self._text_field(box, x, y)
                x += box.width + GAP
            self.y = y - ROW_GAP

    def _section(self, number: int, title: str, note: str | None = None) -> None:
        c = self.c
        self.y -= 4
        band_h = 16.0
        c.setFillColor(BAND_FILL)
        c.setStrokeColor(BAND_FILL)
        c.rect(MARGIN_X, self.y - band_h, CONTENT_W, band_h, stroke=0, fill=1)
        c.setFillColor(INK)
        c.setFont("Helvetica-Bold", 10)
        c.drawString(MARGIN_X + 6, self.y - band_h + 5, f"{number}. {title}")
        if note:
            c.setFont("Helvetica-Oblique", 7.5)
            c.setFillColor(HINT_INK)
            c.drawRightString(MARGIN_X + CONTENT_W - 6, self.y - band_h + 5.5, note)
        self.y -= band_h + 6

    def _subheading(self, text: str) -> None:
        c = self.c
        c.setFillColor(INK)
        c.setFont("Helvetica-Bold", 8.5)
        c.drawString(MARGIN_X, self.y - 8, text)
        self.y -= 12

    # -- page ---------------------------------------------------------------------------------------

    def header(self, practice: dict[str, Any]) -> None:
        c = self.c
        top = self.y
        c.setFillColor(INK)
        c.setFont("Helvetica-Bold", 15)
        c.drawString(MARGIN_X, top - 14, practice["name"])
        c.setFont("Helvetica", 9)
        c.setFillColor(LABEL_INK)
        line_y = top - 27
        for line in [*practice["address_lines"], f"Phone {practice['phone']}"]:
            c.drawString(MARGIN_X, line_y, line)
            line_y -= 11
        right = MARGIN_X + CONTENT_W
        c.setFillColor(INK)
        c.setFont("Helvetica-Bold", 17)
        c.drawRightString(right, top - 15, self.title)
        c.setFont("Helvetica", 8.5)
        c.setFillColor(LABEL_INK)
        c.drawRightString(right, top - 29, "Please print clearly in blue or black ink.")
        c.drawRightString(right, top - 40, "Fields marked * are required.")
        self.y = min(line_y + 11, top - 40) - 9
        c.setStrokeColor(RULE_INK)
        c.setLineWidth(1.2)
        c.line(MARGIN_X, self.y, right, self.y)
        self.y -= 6

    def body(self, practice: dict[str, Any]) -> None:
        self._section(1, "Patient information")
        self._rows(PATIENT_ROWS)
        self._section(2, "Emergency contact")
        self._rows(EMERGENCY_ROWS)
        self._section(3, "Insurance", note="* insurance items are required unless you pay for your care yourself")
        self.y -= 2
        self._checkbox(
            SELF_PAY_KEY,
            MARGIN_X,
            f"{self.fields[SELF_PAY_KEY]['label']}. If checked, leave the insurance boxes below blank.",
        )
        self._subheading("Primary insurance")
        self._rows(PRIMARY_ROWS[:1])
        self._rows(PRIMARY_ROWS[1:])
        self._relationship_hint()
        self._subheading("Secondary insurance (if any)")
        self._rows(SECONDARY_ROWS)
        self._section(4, "Consent")
        self._privacy_paragraph(practice)
        self._checkbox(HIPAA_KEY, MARGIN_X, f"{self.fields[HIPAA_KEY]['label']} *")
        self.y += 2
        self._rows([SIGNATURE_ROW])

    def _relationship_hint(self) -> None:
        """Print the accepted relationships under the relationship box, clear of the box."""
        # self.y is ROW_GAP below the bottom of the row just drawn; the hint goes into that gap,
        # LABEL_CLEARANCE + a little below the box.
        c = self.c
        row = PRIMARY_ROWS[1]
        x = MARGIN_X + sum(b.width + GAP for b in row[:-1])
        box_bottom = self.y + ROW_GAP
        baseline = box_bottom - LABEL_CLEARANCE - 1.5 - 7 * 0.72
        c.setFont(LABEL_FONT, 7)
        c.setFillColor(HINT_INK)
        c.drawString(x, baseline, RELATIONSHIP_HINT)
        self.y = baseline - 2.5 - ROW_GAP + 4

    def _privacy_paragraph(self, practice: dict[str, Any]) -> None:
        c = self.c
        size, leading = 8.0, 10.0
        text = PRIVACY_TEXT.format(name=practice["name"])
        lines = simpleSplit(text, LABEL_FONT, size, CONTENT_W - 12)
        height = len(lines) * leading + 8
        c.setStrokeColor(Color(0.75, 0.77, 0.80))
        c.setLineWidth(0.6)
        c.rect(MARGIN_X, self.y - height, CONTENT_W, height, stroke=1, fill=0)
        baseline = self.y - 4 - size
        for i, line in enumerate(lines):
            c.setFont("Helvetica-Bold" if i == 0 else LABEL_FONT, size)
            c.setFillColor(INK)
            if i == 0 and line.startswith("Notice of Privacy Practices."):
                head = "Notice of Privacy Practices."
                c.drawString(MARGIN_X + 6, baseline, head)
                c.setFont(LABEL_FONT, size)
                c.drawString(MARGIN_X + 6 + stringWidth(head + " ", "Helvetica-Bold", size), baseline,
                             line[len(head):].lstrip())
            else:
                c.setFont(LABEL_FONT, size)
                c.drawString(MARGIN_X + 6, baseline - i * leading, line)
        self.y -= height + 8

    def footer(self) -> None:
        c = self.c
        c.setFont(LABEL_FONT, 7)
        c.setFillColor(HINT_INK)
        c.drawString(MARGIN_X, 28, self.form_id)
        c.drawRightString(MARGIN_X + CONTENT_W, 28, "Please return this form to the front desk.  Page 1 of 1")
        if self.y < 40:
            raise ValueError(f"layout overflows the page (cursor at {self.y:.1f} pt)")


# ---- Medical history form: repeating rows and a check list -------------------------------------------

HISTORY_OUTPUT = REPO / "templates" / "forms" / "medical_history.pdf"
HISTORY_TITLE = "Medical History Form"
HISTORY_ID = "Form MH-1 (rev. 2026-12)"
HISTORY_PATIENT_ROW: list[Box] = [
    Box("patient.last_name", 200),
    Box("patient.first_name", 180),
    Box("patient.date_of_birth", 116, hint="MM/DD/YYYY"),
]
ROW_NUMBER_W = 20.0  # the printed row number left of each table row
TABLE_BOX_H = 18.0
TABLE_ROW_GAP = 4.0  # between two rows of a table (more than LABEL_CLEARANCE: nothing printed there)
CHECK_COLUMNS = 4
CHECK_PITCH = 22.0  # check boxes 10 pt apart: a tick drawn larger than its box must not reach the next one


@dataclass(frozen=True)
class Table:
    """A repeating group drawn as ``rows`` lines of boxes; ``widths`` per row field, in the vocabulary's
    order, with GAPs between them, adding up to CONTENT_W - ROW_NUMBER_W."""

    group: str
    rows: int
    widths: tuple[float, ...]
    hints: tuple[str | None, ...] = ()


HISTORY_TABLES: list[tuple[str, Table]] = [
    ("Other medical conditions (not listed above)", Table("conditions", 3, (400, 86), (None, "YYYY"))),
    ("Current medications (include over-the-counter and supplements)",
     Table("medications", 6, (216, 120, 140), (None, "e.g. 20 mg", "e.g. twice a day"))),
    ("Allergies (medications, foods, latex, other)", Table("allergies", 3, (256, 230), (None, "e.g. rash, hives"))),
]


def load_groups(path: Path = FIELDS_YAML) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The repeating groups and check lists of the vocabulary."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return dict(data.get("groups") or {}), dict(data.get("checklists") or {})


class HistoryBuilder(FormBuilder):
    """The medical history form: who the patient is, a check list of conditions, tables of other
    conditions, medications and allergies, and the signature."""

    title = HISTORY_TITLE
    form_id = HISTORY_ID

    def __init__(self, canvas: Canvas, fields: dict[str, dict[str, Any]], groups: dict[str, dict[str, Any]],
                 checklists: dict[str, dict[str, Any]]) -> None:
        super().__init__(canvas, fields)
        self.groups = groups
        self.checklists = checklists

    def _check_grid(self, name: str) -> None:
        """One check box per option, CHECK_COLUMNS to a line, each with its label to the right."""
        options: dict[str, str] = self.checklists[name]["options"]
        c = self.c
        col_w = CONTENT_W / CHECK_COLUMNS
        for i, (option, label) in enumerate(options.items()):
            col, line = i % CHECK_COLUMNS, i // CHECK_COLUMNS
            x = MARGIN_X + col * col_w
            y = self.y - line * CHECK_PITCH - CHECK_SIZE
            key = f"{name}.{option}"
            c.setStrokeColor(BOX_INK)
            c.setLineWidth(0.8)
            c.rect(x, y, CHECK_SIZE, CHECK_SIZE, stroke=1, fill=0)
            c.acroForm.checkbox(name=key, tooltip=label, checked=False, buttonStyle="check", shape="square",
                                x=x, y=y, size=CHECK_SIZE, fillColor=None, borderColor=None, textColor=black,
                                borderWidth=0, fieldFlags="")
            self.placed.append(key)
            c.setFillColor(INK)
            c.setFont(LABEL_FONT, 9)
            c.drawString(x + CHECK_SIZE + 7, y + CHECK_SIZE / 2 - 0.26 * 9, label)
        lines = -(-len(options) // CHECK_COLUMNS)
        self.y -= lines * CHECK_PITCH + 6

    def _table(self, table: Table) -> None:
        """Column labels once, then ``table.rows`` numbered lines of boxes named ``<group>.<n>.<field>``."""
        spec = self.groups[table.group]
        row_fields: dict[str, dict[str, Any]] = spec["fields"]
        if len(table.widths) != len(row_fields):
            raise ValueError(f"table {table.group}: {len(table.widths)} widths for {len(row_fields)} row fields")
        total = ROW_NUMBER_W + sum(table.widths) + GAP * (len(table.widths) - 1)
        if abs(total - CONTENT_W) > 0.01:
            raise ValueError(f"table {table.group} is {total} pt wide, not {CONTENT_W}")
        c = self.c
        label_top = LABEL_BASELINE_ABOVE_BOX + LABEL_SIZE * 0.75
        first_top = self.y - label_top
        x = MARGIN_X + ROW_NUMBER_W
        for i, (fname, fspec) in enumerate(row_fields.items()):
            label = str(fspec.get("label", fname))
            hint = table.hints[i] if i < len(table.hints) else None
            self._label(x, first_top + LABEL_BASELINE_ABOVE_BOX, label, hint, table.widths[i])
            x += table.widths[i] + GAP
        for n in range(1, table.rows + 1):
            y = first_top - n * TABLE_BOX_H - (n - 1) * TABLE_ROW_GAP
            c.setFillColor(LABEL_INK)
            c.setFont(LABEL_FONT, 8)
            c.drawRightString(MARGIN_X + ROW_NUMBER_W - 6, y + TABLE_BOX_H / 2 - 3, f"{n}.")
            x = MARGIN_X + ROW_NUMBER_W
            for (fname, fspec), width in zip(row_fields.items(), table.widths, strict=True):
                key = f"{table.group}.{n}.{fname}"
                c.setStrokeColor(BOX_INK)
                c.setLineWidth(0.6)
                c.rect(x, y, width, TABLE_BOX_H, stroke=1, fill=0)
                c.acroForm.textfield(name=key, tooltip=f"{spec.get('label', table.group)}, row {n}: "
                                                       f"{fspec.get('label', fname)}",
                                     value="", x=x, y=y, width=width, height=TABLE_BOX_H, fontName="Helvetica",
                                     fontSize=FIELD_FONT_SIZE, textColor=black, fillColor=None,
                                     borderColor=None, borderWidth=0, maxlen=0, fieldFlags="")
                self.placed.append(key)
                x += width + GAP
            self.y = y - ROW_GAP

    def body(self, practice: dict[str, Any]) -> None:
        self._section(1, "Patient")
        self._rows([HISTORY_PATIENT_ROW])
        number = 2
        for name, spec in self.checklists.items():
            self._section(number, str(spec.get("label", name)))
            self._check_grid(name)
            number += 1
        for title, table in HISTORY_TABLES:
            self._section(number, title, note="one per line; leave unused lines blank")
            self._table(table)
            number += 1
        self._section(number, "Signature")
        self.y -= 2
        self._rows([SIGNATURE_ROW])


def build_history(out: Path = HISTORY_OUTPUT, fields_path: Path = FIELDS_YAML,
                  practice_path: Path = FRONTDESK_YAML) -> Path:
    """Write the medical history form to ``out``; raise if it leaves out a group or check list of the
    vocabulary, or names a box the vocabulary does not know."""
    fields = load_fields(fields_path)
    groups, checklists = load_groups(fields_path)
    practice = load_practice(practice_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = Canvas(str(out), pagesize=letter, invariant=1, pageCompression=1)
    canvas.setTitle(HISTORY_TITLE)
    canvas.setSubject(HISTORY_ID)
    canvas.setAuthor(practice["name"])
    canvas.setCreator("Frontdesk scripts/build_forms.py")
    builder = HistoryBuilder(canvas, fields, groups, checklists)
    builder.header(practice)
    builder.body(practice)
    builder.footer()
    placed = builder.placed
    duplicates = sorted({k for k in placed if placed.count(k) > 1})
    tabled = {t.group for _title, t in HISTORY_TABLES}
    missing = sorted(set(groups) - tabled)
    unknown = sorted(tabled - set(groups))
    if duplicates or missing or unknown:
        raise ValueError(f"medical history layout out of step with {fields_path.name}: groups missing={missing} "
                         f"unknown={unknown} duplicated={duplicates}")
    canvas.showPage()
    canvas.save()
    return out


def build(out: Path = OUTPUT, fields_path: Path = FIELDS_YAML, practice_path: Path = FRONTDESK_YAML) -> Path:
    """Write the intake form to ``out``; raise if the layout and the vocabulary disagree."""
    fields = load_fields(fields_path)
    practice = load_practice(practice_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = Canvas(str(out), pagesize=letter, invariant=1, pageCompression=1)
    canvas.setTitle(FORM_TITLE)
    canvas.setSubject(FORM_ID)
    canvas.setAuthor(practice["name"])
    canvas.setCreator("Frontdesk scripts/build_forms.py")
    builder = FormBuilder(canvas, fields)
    builder.header(practice)
    builder.body(practice)
    builder.footer()

    placed = builder.placed
    duplicates = sorted({k for k in placed if placed.count(k) > 1})
    unknown = sorted(set(placed) - set(fields))
    missing = sorted(set(fields) - set(placed))
    if duplicates or unknown or missing:
        raise ValueError(f"form layout out of step with {fields_path.name}: missing={missing} "
                         f"unknown={unknown} duplicated={duplicates}")
    canvas.showPage()
    canvas.save()
    return out


# =================================================================================================
# Issue 16 (forms16b): the forms besides registration. Each is one page, built by the same primitives,
# and carries the patient's name and date of birth (to find the record) plus the keys that fields.yaml
# gives ``form: <its id>``; the build fails when the two disagree, as for the registration form.
# =================================================================================================

IDENTITY_ROW: list[Box] = [
    Box("patient.last_name", 200),
    Box("patient.first_name", 176),
    Box("patient.date_of_birth", 120, hint="MM/DD/YYYY"),
]
IDENTITY_KEYS = frozenset(b.key for b in IDENTITY_ROW)


@dataclass(frozen=True)
class OtherForm:
    """One form: its title, printed number, and body, a list of steps drawn top-down: ``("section",
    title)``, ``("text", paragraph)`` ({name} is the practice's name), ``("rows", rows)``, ``("check",
    key, statement)`` and ``("hint", text)``."""

    title: str
    number: str
    body: tuple[tuple[Any, ...], ...]


RACE_HINT = ("Race: American Indian or Alaska Native, Asian, Black or African American, Native Hawaiian or "
             "Other Pacific Islander, White, Other, or Decline to answer.  Ethnicity: Hispanic or Latino, "
             "Not Hispanic or Latino, or Decline to answer.")

OTHER_FORMS: dict[str, OtherForm] = {
    "hipaa_acknowledgment": OtherForm(
        title="Privacy Notice Acknowledgment",
        number="Form HIPAA-1 (rev. 2026-12)",
        body=(
            ("section", "Patient"),
            ("rows", [IDENTITY_ROW]),
            ("section", "Acknowledgment of receipt"),
            ("text", "The Health Insurance Portability and Accountability Act (HIPAA) requires {name} to give you "
                     "its Notice of Privacy Practices. The notice explains how your health information may be "
                     "used and disclosed, your right to see and copy your records, to ask for corrections and "
                     "restrictions, to receive confidential communications, and how to file a complaint with "
                     "the practice or with the Secretary of Health and Human Services. We may revise the "
                     "notice; the current version is posted in our waiting room and available on request."),
            ("check", "hipaa_acknowledgment.received_notice",
             "I received, or was offered, a copy of the Notice of Privacy Practices of {name}. *"),
            ("section", "Race and ethnicity (optional)"),
            ("text", "Federal quality programs ask practices to record race and ethnicity. Answering is "
                     "voluntary and does not affect your care."),
            ("rows", [[Box("patient.race", 306, label="Race"), Box("patient.ethnicity", 200, label="Ethnicity")]]),
            ("hint", RACE_HINT),
            ("section", "Signature"),
            ("rows", [[Box("hipaa_acknowledgment.signature", 356,
                           label="Signature of patient or personal representative"),
                       Box("hipaa_acknowledgment.date", 150, label="Date signed", hint="MM/DD/YYYY")]]),
        ),
    ),
    "release_of_information": OtherForm(
        title="Records Release Authorization",
        number="Form ROI-1 (rev. 2026-12)",
        body=(
            ("section", "Patient"),
            ("rows", [IDENTITY_ROW]),
            ("section", "Who may receive my health information"),
            ("rows", [
                [Box("patient.primary_care_physician.name", 340, label="My primary-care physician"),
                 Box("patient.primary_care_physician.npi", 166, label="NPI", hint="10 digits")],
                [Box("referral.physician_name", 340, label="The physician who referred me"),
                 Box("referral.physician_npi", 166, label="NPI", hint="10 digits")],
                [Box("patient.preferred_pharmacy", 516, label="My preferred pharmacy", hint="name and location")],
                [Box("release_of_information.other_recipient", 516, label="Another person (full name)")],
            ]),
            ("section", "What may be released, and until when"),
            ("rows", [[Box("release_of_information.records", 340, label="Records to release",
                           hint="e.g. all records, lab results"),
                       Box("release_of_information.expires", 166, label="Expires on", hint="MM/DD/YYYY")]]),
            ("text", "I authorize {name} to disclose the records named above to the persons named above. I may "
                     "revoke this authorization in writing at any time, except for disclosures already made. "
                     "My treatment, payment, enrollment or eligibility for benefits do not depend on signing. "
                     "Information disclosed may be redisclosed by the recipient and no longer protected by "
                     "federal privacy regulations."),
            ("section", "Signature"),
            ("rows", [[Box("release_of_information.signature", 356,
                           label="Signature of patient or personal representative"),
                       Box("release_of_information.date", 150, label="Date signed", hint="MM/DD/YYYY")]]),
        ),
    ),
    "financial_policy": OtherForm(
        title="Financial Policy Agreement",
        number="Form FIN-1 (rev. 2026-12)",
        body=(
            ("section", "Patient"),
            ("rows", [IDENTITY_ROW]),
            ("section", "Our financial policy"),
            ("text", "Copayments and outstanding balances are due at the time of service. {name} bills your "
                     "health plan as a courtesy; you remain responsible for deductibles, coinsurance and any "
                     "service your plan does not cover. Self-pay patients pay in full at each visit unless a "
                     "payment plan is arranged with our billing office. Statements are mailed monthly; "
                     "balances unpaid after ninety days may be referred to a collection agency. Please give "
                     "us twenty-four hours notice to cancel an appointment; a missed appointment may incur a "
                     "fee. Returned checks are charged the fee allowed by state law."),
            ("section", "Today's visit"),
            ("rows", [[Box("visit.reason", 516, label="Reason for today's visit")]]),
            ("check", "financial_policy.agreed",
             "I have read the financial policy above, I agree to it, and I accept responsibility for "
             "payment of my account. *"),
            ("section", "Signature"),
            ("rows", [[Box("financial_policy.signature", 356,
                           label="Signature of patient or responsible party"),
                       Box("financial_policy.date", 150, label="Date signed", hint="MM/DD/YYYY")]]),
        ),
    ),
}


class OtherFormBuilder(FormBuilder):
    """A form besides registration: the registration form's header and primitives, another title."""

    def __init__(self, canvas: Canvas, fields: dict[str, dict[str, Any]], form: OtherForm) -> None:
        super().__init__(canvas, fields)
        self.form = form
        self.title = form.title

    def _paragraph(self, text: str, size: float = 8.5, leading: float = 10.5, ink: Color = INK) -> None:
        c = self.c
        for line in simpleSplit(text, LABEL_FONT, size, CONTENT_W - 12):
            c.setFont(LABEL_FONT, size)
            c.setFillColor(ink)
            c.drawString(MARGIN_X + 6, self.y - size, line)
            self.y -= leading
        self.y -= 8

    def body(self, practice: dict[str, Any]) -> None:
        number = 0
        for step in self.form.body:
            kind = step[0]
            if kind == "section":
                number += 1
                self._section(number, step[1])
            elif kind == "text":
                self._paragraph(step[1].format(name=practice["name"]))
            elif kind == "hint":
                self.y += ROW_GAP - LABEL_CLEARANCE - 2  # just under the boxes above, clear of them
                self._paragraph(step[1], size=7, leading=8.5, ink=HINT_INK)
                self.y -= 4
            elif kind == "rows":
                self._rows(step[1])
            elif kind == "check":
                self._checkbox(step[1], MARGIN_X, step[2].format(name=practice["name"]))
            else:
                raise ValueError(f"unknown layout step {kind!r}")

    def footer(self) -> None:
        c = self.c
        c.setFont(LABEL_FONT, 7)
        c.setFillColor(HINT_INK)
        c.drawString(MARGIN_X, 28, self.form.number)
        c.drawRightString(MARGIN_X + CONTENT_W, 28, "Please return this form to the front desk.  Page 1 of 1")
        if self.y < 40:
            raise ValueError(f"layout overflows the page (cursor at {self.y:.1f} pt)")


def build_other(form_id: str, out: Path, fields_path: Path = FIELDS_YAML,
                practice_path: Path = FRONTDESK_YAML) -> Path:
    """Write the form ``form_id`` of :data:`OTHER_FORMS` to ``out``; raise if its layout and the keys that
    fields.yaml gives that form disagree."""
    form = OTHER_FORMS[form_id]
    all_fields = load_fields(fields_path)
    fields = load_fields(fields_path, form=form_id)
    usable = {**{k: all_fields[k] for k in IDENTITY_KEYS}, **fields}
    practice = load_practice(practice_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = Canvas(str(out), pagesize=letter, invariant=1, pageCompression=1)
    canvas.setTitle(form.title)
    canvas.setSubject(form.number)
    canvas.setAuthor(practice["name"])
    canvas.setCreator("Frontdesk scripts/build_forms.py")
    builder = OtherFormBuilder(canvas, usable, form)
    builder.header(practice)
    builder.body(practice)
    builder.footer()
    placed = builder.placed
    duplicates = sorted({k for k in placed if placed.count(k) > 1})
    unknown = sorted(set(placed) - set(usable))
    missing = sorted(set(usable) - set(placed))
    if duplicates or unknown or missing:
        raise ValueError(f"{form_id} layout out of step with {fields_path.name}: missing={missing} "
                         f"unknown={unknown} duplicated={duplicates}")
    canvas.showPage()
    canvas.save()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUTPUT, help="where to write the registration form")
    parser.add_argument("--history-out", type=Path, default=HISTORY_OUTPUT,
                        help="where to write the medical history form")
    parser.add_argument("--out-dir", type=Path, default=OUTPUT.parent,
                        help="where to write the other forms (<form id>.pdf)")
    args = parser.parse_args(argv)
    for path in (build(args.out), build_history(args.history_out)):
        print(f"wrote {path}")
    for form_id in OTHER_FORMS:
        print(f"wrote {build_other(form_id, args.out_dir / f'{form_id}.pdf')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

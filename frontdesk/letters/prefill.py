"""A form from ``templates/forms/`` filled with what the record already knows, for the patient to check
and complete at the visit.

A form template names its fields with vocabulary keys (``config/fields.yaml``), so the record's current
value for a key goes into the field of that name, written the way a person writes it (dates MM/DD/YYYY,
phones (217) 555-0142, boxes ticked). What the patient must do themselves is never filled in: signatures,
consents and the date signed. The form stays fillable, so it can be printed or completed on a tablet;
reading it back with ``frontdesk extract`` gives the record's values again.

Handing out a form with patient data is an export of the record: it is audited.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontdesk import audit
from frontdesk.db import Database
from frontdesk.db.models import Patient
from frontdesk.exceptions import FrontdeskError, InputFileError
from frontdesk.fields import Vocabulary, load_vocabulary
from frontdesk.settings import Settings

_FORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
NEVER_PREFILLED_SECTIONS = ("consent",)
NEVER_PREFILLED_TYPES = ("signature",)


class PrefillError(FrontdeskError):
    """The form or the patient cannot be found, or the form cannot be filled."""


@dataclass
class PrefillResult:
    """Which fields were filled, which the record has no value for, and which are left to the patient."""

    form: str
    out: Path
    filled: list[str] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)
    for_patient: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form, "out": str(self.out), "filled": self.filled, "blank": self.blank,
                "for_patient": self.for_patient}


def available_forms(settings: Settings) -> dict[str, Path]:
    """Form name (file stem) -> path, the first folder of ``forms_dirs`` winning."""
    found: dict[str, Path] = {}
    for folder in settings.forms_dirs:
        if folder.is_dir():
            for path in sorted(folder.glob("*.pdf")):
                found.setdefault(path.stem, path)
    return found


def find_form(settings: Settings, name: str) -> Path:
    """The form template called ``name`` (no paths: only the practice's own forms can be filled)."""
    if not _FORM_NAME.match(name):
        raise PrefillError(f"{name!r} is not a form name; give the name of a form in templates/forms, "
                           "without folder or .pdf")
    forms = available_forms(settings)
    if name not in forms:
        listed = ", ".join(sorted(forms)) or "none"
        raise PrefillError(f"no form called {name!r} (available: {listed})")
    return forms[name]


def display_value(value: Any, kind: str) -> str | None:
    """A normalised record value as a person would write it on the form; None to leave it blank."""
    if value is None or value == "":
        return None
    if kind == "date" and isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        year, month, day = value.split("-")
        return f"{month}/{day}/{year}"
    if kind == "phone" and isinstance(value, str) and re.fullmatch(r"\d{10}", value):
        return f"({value[:3]}) {value[3:6]}-{value[6:]}"
    if isinstance(value, bool):
        return None  # checkboxes are handled by the caller
    return str(value)


def _on_state(field_obj: Any) -> str:
    """The name a checkbox uses for "ticked" (often /Yes, but a form may call it anything)."""
    states = [s for s in field_obj.get("/_States_", []) if s != "/Off"]
    return states[0] if states else "/Yes"


def record_values(patient: Patient) -> dict[str, Any]:
    """The record's current value of every vocabulary key, name and date of birth included."""
    values: dict[str, Any] = {f.key: f.value for f in patient.fields}
    values.setdefault("patient.first_name", patient.first_name)
    values.setdefault("patient.last_name", patient.last_name)
    values.setdefault("patient.date_of_birth", patient.date_of_birth.isoformat())
    return values


def fill(form_pdf: bytes, values: dict[str, Any], vocabulary: Vocabulary) -> tuple[bytes, PrefillResult]:
    """The form with ``values`` filled in; fields for the patient are left as they are."""
    from pypdf import PdfReader, PdfWriter

    try:
        reader = PdfReader(io.BytesIO(form_pdf))
        fields = reader.get_fields() or {}
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise PrefillError(f"the form cannot be read ({type(exc).__name__})") from None
    if not fields:
        raise PrefillError("the form has no fillable fields")
    result = PrefillResult(form="", out=Path())
    text: dict[str, str] = {}
    for name, field_obj in fields.items():
        spec = vocabulary.fields.get(name)
        if spec is None:
            continue
        if spec.section in NEVER_PREFILLED_SECTIONS or spec.type in NEVER_PREFILLED_TYPES:
            result.for_patient.append(name)
            continue
        value = values.get(name)
        if field_obj.get("/FT") == "/Btn":
            if isinstance(value, bool):
                text[name] = _on_state(field_obj) if value else "/Off"
                result.filled.append(name)
            else:
                result.blank.append(name)
            continue
        shown = display_value(value, spec.type)
        if shown is None:
            result.blank.append(name)
        else:
            text[name] = shown
            result.filled.append(name)
    writer = PdfWriter(clone_from=reader)
    for page in writer.pages:
        names_here = {a.get_object().get("/T") for a in page.get("/Annots", []) or []}
        here = {k: v for k, v in text.items() if k in names_here}
        if here:
            writer.update_page_form_field_values(page, here, auto_regenerate=False)
    writer.set_need_appearances_writer(True)  # viewers draw the values in their own fonts
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), result


def prefill_form(db: Database, settings: Settings, patient_id: str, form: str, out: Path) -> PrefillResult:
    """Write the form filled for this patient to ``out`` (owner-readable only) and audit the export."""
    path = find_form(settings, form)
    vocabulary = load_vocabulary(settings.fields_file)
    with db.begin() as s:
        patient = s.get(Patient, patient_id)
        if patient is None:
            raise PrefillError(f"no patient {patient_id}")
        values = record_values(patient)
    try:
        template = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot read the form ({exc.strerror or type(exc).__name__})") from None
    data, result = fill(template, values, vocabulary)
    result.form, result.out = form, Path(out)
    result.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = result.out.with_name(f".{result.out.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, result.out)
    with db.begin() as s:
        audit.record(s, "export", "patient", patient_id, patient_id=patient_id,
                     detail=f"prefilled form; {len(result.filled)} fields")
    return result


__all__ = ["PrefillError", "PrefillResult", "available_forms", "display_value", "fill", "find_form",
           "prefill_form", "record_values"]

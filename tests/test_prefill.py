"""Pre-filled forms: the record's values go into the form and read back the same; what the patient must
do stays blank; bad form names and unknown patients are refused; the export is audited."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.db import Database, open_database
from frontdesk.db.models import AuditEvent, Patient, PatientField
from frontdesk.letters.prefill import PrefillError, display_value, find_form, prefill_form
from frontdesk.records import match_key
from tests.conftest import run_cli

RECORD: dict[str, Any] = {
    "patient.first_name": "Zoë", "patient.last_name": "O'Neil-Núñez", "patient.date_of_birth": "1980-02-29",
    "patient.sex": "F", "patient.phone": "2175550142", "patient.email": "zoe@example.org",
    "patient.address.street": "48 Linden Ave & Co, Apt <3B>", "patient.address.city": "Springfield",
    "patient.address.state": "IL", "patient.address.zip": "62702-1234",
    "emergency_contact.name": "Sam O'Neil", "emergency_contact.phone": "3095550199",
    "insurance.self_pay": False, "insurance.primary.payer_name": "Blue Cross Blue Shield of Illinois",
    "insurance.primary.member_id": "XYZ123456789", "insurance.primary.group_number": None,
    "insurance.primary.subscriber_name": "Zoë O'Neil-Núñez", "insurance.primary.subscriber_date_of_birth": "1980-02-29",
    "insurance.primary.relationship_to_patient": "self",
    "consent.hipaa_acknowledgment": True, "consent.signature": True, "consent.date": "2026-01-05",
}


def add_patient(db: Database, values: dict[str, Any]) -> str:
    with db.begin() as s:
        dob = date.fromisoformat(values["patient.date_of_birth"])
        patient = Patient(match_key=match_key(values["patient.first_name"], values["patient.last_name"], dob),
                          first_name=values["patient.first_name"], last_name=values["patient.last_name"],
                          date_of_birth=dob)
        patient.fields = [PatientField(key=k, value=v) for k, v in values.items()]
        s.add(patient)
        s.flush()
        return patient.id


def test_prefilled_form_reads_back_as_the_record(settings: Any, tmp_path: Path) -> None:
    from frontdesk.extraction import Reader

    db = open_database(settings)
    patient_id = add_patient(db, RECORD)
    out = tmp_path / "out" / f"new_patient_intake-{patient_id}.pdf"
    result = prefill_form(db, settings, patient_id, "new_patient_intake", out)
    assert (os.stat(out).st_mode & 0o077) == 0
    assert set(result.for_patient) == {"consent.hipaa_acknowledgment", "consent.signature", "consent.date"}
    assert "insurance.primary.group_number" in result.blank
    assert "patient.phone" in result.filled and "insurance.self_pay" in result.filled

    reading = Reader(settings).extract(out)
    assert reading.form == "new_patient_intake" and reading.method == "acroform"
    for key, value in RECORD.items():
        got = reading.fields[key].value if key in reading.fields else None
        if key.startswith("consent."):
            assert got in (None, False), key  # left for the patient to sign and date at the visit
        else:
            assert got == value, key
    with db.begin() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "export")))
    assert [(e.object_type, e.patient_id) for e in events] == [("patient", patient_id)]
    assert "Neil" not in (events[0].detail or "")
    db.dispose()


def test_display_values() -> None:
    assert display_value("1980-02-29", "date") == "02/29/1980"
    assert display_value("2175550142", "phone") == "(217) 555-0142"
    assert display_value("not-a-date", "date") == "not-a-date"
    assert display_value(None, "text") is None and display_value("", "text") is None


@pytest.mark.parametrize("name", ["../config/fields", "new_patient_intake.pdf", "/etc/passwd", "", "..", "a/b",
                                  "x" * 200])
def test_only_forms_in_the_forms_folder_by_name(settings: Any, name: str) -> None:
    with pytest.raises(PrefillError):
        find_form(settings, name)


def test_unknown_form_lists_the_available_ones(settings: Any) -> None:
    with pytest.raises(PrefillError, match="new_patient_intake"):
        find_form(settings, "consent_form")


def test_unknown_patient_and_form_without_fields(settings: Any, tmp_path: Path) -> None:
    db = open_database(settings)
    with pytest.raises(PrefillError, match="no patient pat-000000000000"):
        prefill_form(db, settings, "pat-000000000000", "new_patient_intake", tmp_path / "x.pdf")
    from reportlab.pdfgen.canvas import Canvas

    forms = tmp_path / "forms"
    forms.mkdir()
    canvas = Canvas(str(forms / "flat.pdf"))
    canvas.drawString(72, 720, "A printed form without fields")
    canvas.save()
    (forms / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    settings.forms_dirs = [forms]
    patient_id = add_patient(db, RECORD)
    with pytest.raises(PrefillError, match="no fillable fields"):
        prefill_form(db, settings, patient_id, "flat", tmp_path / "x.pdf")
    with pytest.raises(PrefillError, match="cannot be read"):
        prefill_form(db, settings, patient_id, "broken", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    db.dispose()


def test_prefill_cli(tmp_path: Path, fd_env: dict[str, str]) -> None:
    db = open_database(fd_env["FRONTDESK_DATABASE_URL"])
    patient_id = add_patient(db, RECORD)
    db.dispose()
    out = tmp_path / "forms-out" / "intake.pdf"
    proc = run_cli("prefill", patient_id, "new_patient_intake", "--out", str(out), "--json", env=fd_env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["out"] == str(out) and out.is_file() and len(result["filled"]) >= 15
    assert "Zoë" not in proc.stdout and "Linden" not in proc.stdout
    bad = run_cli("prefill", patient_id, "../../etc/passwd", env=fd_env)
    assert bad.returncode == 1 and "not a form name" in bad.stderr and "Traceback" not in bad.stderr

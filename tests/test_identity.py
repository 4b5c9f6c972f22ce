"""One person, however the name is spelled: the form, the card, the letter and the scheduler agree.

"Michał Nowak" signs the intake form; the insurance card and the scheduler print "MICHAL NOWAK". Before
one name fold, the records kept "ł" and made two patients of him, while the cards matched him to one.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from frontdesk import records
from frontdesk.cards import Candidate, match_patient
from frontdesk.checks.appointments import Appointment
from frontdesk.checks.matching import PatientIndex
from frontdesk.checks.patients import PatientRecord
from frontdesk.db import open_database
from frontdesk.db.models import Document, Patient
from frontdesk.fields import load_vocabulary
from frontdesk.identity import fold, match_key
from frontdesk.models import ExtractionResult, FieldResult

ROOT = Path(__file__).resolve().parents[1]
P = "insurance.primary."


@pytest.mark.parametrize(("a", "b"), [("Michał", "Michal"), ("Søren", "SOREN"), ("Đorđević", "Dordevic"),
                                      ("Strauß", "Strauss"), ("Æsa", "AESA"), ("Œuvray", "oeuvray"),
                                      ("Yıldız", "Yildiz"), ("José García-López", "JOSE GARCIA LOPEZ"),
                                      ("O'Neil", "ONEIL")])
def test_the_one_fold_takes_letters_unicode_does_not_decompose(a: str, b: str) -> None:
    assert fold(a) == fold(b) != ""


def test_different_names_stay_different() -> None:
    assert fold("Michał") != fold("Michael") and fold("Nowak") != fold("Novak")


def intake(first: str, last: str, dob: str) -> ExtractionResult:
    fields = {"patient.first_name": first, "patient.last_name": last, "patient.date_of_birth": dob,
              "consent.signature": True}
    return ExtractionResult(document_type="intake_form", form="new_patient_intake", method="acroform", pages=2,
                            fields={k: FieldResult(value=v) for k, v in fields.items()})  # type: ignore[arg-type]


def insurance_card(name: str, dob: str, member_id: str) -> ExtractionResult:
    fields = {P + "payer_name": "Aetna", P + "member_id": member_id, P + "subscriber_name": name,
              P + "subscriber_date_of_birth": dob}
    return ExtractionResult(document_type="insurance_card", method="ocr", pages=1,
                            fields={k: FieldResult(value=v) for k, v in fields.items()})  # type: ignore[arg-type]


def file(db, n: int, result: ExtractionResult) -> Document:  # type: ignore[no-untyped-def]
    sha = hashlib.sha256(f"identity-{n}".encode()).hexdigest()
    doc_id = f"doc-{sha[:16]}"
    with db.begin() as s:
        records.reserve_document(s, document_id=doc_id, sha256=sha, size=10, prefix=f"documents/x/{doc_id}",
                                 objects=[], source_path=None)
    with db.begin() as s:
        records.complete_document(s, doc_id, result=result, outcome="filed", stored=[],
                                  vocab=load_vocabulary(ROOT / "config" / "fields.yaml"))
    with db.begin() as s:
        return s.get(Document, doc_id)  # type: ignore[return-value]


def test_michal_on_the_form_and_michal_on_the_card_are_one_patient(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'frontdesk.db'}")
    form = file(db, 1, intake("Michał", "Nowak", "1984-07-12"))
    card = file(db, 2, insurance_card("MICHAL NOWAK", "1984-07-12", "W987654321"))
    again = file(db, 3, intake("Michal", "Nowak", "1984-07-12"))  # a later form typed without the ł
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 1
        patient = s.scalars(select(Patient)).one()
        assert patient.match_key == match_key("Michal", "NOWAK", date(1984, 7, 12))
    assert form.patient_id == card.patient_id == again.patient_id == patient.id
    db.dispose()


def test_the_card_matcher_and_the_checks_index_fold_the_same_way() -> None:
    m = match_patient(name="MICHAL NOWAK", date_of_birth="1984-07-12",
                      candidates=[Candidate("pat-1", "Michał", "Nowak", "1984-07-12")])
    assert m.patient_id == "pat-1" and m.matched_by == "name_dob"
    record = PatientRecord(patient_id="pat-1", first_name="Michał", last_name="Nowak",
                           date_of_birth=date(1984, 7, 12))
    appt = Appointment(where="row 2", start=datetime(2026, 12, 7, 9, 30), provider="Dr. Adams",
                       first_name="Michal", last_name="NOWAK", date_of_birth=date(1984, 7, 12))
    assert PatientIndex([record]).match(appt).record is record

"""A patient whose form is waiting for review is not "no intake": a misread last name on a form in review
("MÜULLER" for "MÜLLER") is matched with the date of birth and first name, and the check reports "intake
received, in review" with no reminder asking for a form the patient has filled in. A filed record one
letter away is someone else."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from frontdesk.checks.appointments import Appointment
from frontdesk.checks.config import checks_for, load_checks
from frontdesk.checks.matching import PatientIndex
from frontdesk.checks.patients import IntakeOnFile, PatientRecord
from frontdesk.checks.rules import evaluate
from tests.conftest import ROOT

DOB = date(1961, 5, 14)
CHECKS = ROOT / "config" / "checks.yaml"


def appt(first: str, last: str, dob: date = DOB) -> Appointment:
    return Appointment(where="row 2", start=datetime(2026, 3, 3, 9), provider="Dr. Kim", first_name=first,
                       last_name=last, date_of_birth=dob, external_id="A-1")


def record(last: str, *, in_review: bool, pid: str = "pat-1", first: str = "Jürgen") -> PatientRecord:
    intake = IntakeOnFile(document_id="doc-1", received_on=date(2026, 2, 20), signed=True,
                          hipaa_acknowledged=True, signed_on=date(2026, 2, 20), in_review=in_review)
    return PatientRecord(patient_id=pid, first_name=first, last_name=last, date_of_birth=DOB,
                         fields={"insurance.self_pay": True, "patient.phone": "2175550142"}, intake=intake)


def codes(findings: Any) -> set[str]:
    return {f.code for f in findings}


def test_a_misread_name_in_review_is_reported_in_review_not_missing() -> None:
    checks = checks_for(CHECKS)
    index = PatientIndex([record("MÜULLER", in_review=True)])
    match = index.match(appt("Jürgen", "Müller"))
    assert match.record is not None and match.matched_by == "name_dob_in_review"
    found = evaluate(appt("Jürgen", "Müller"), match, checks, today=date(2026, 3, 2))
    assert "intake.in_review" in codes(found) and "intake.missing" not in codes(found)
    in_review = next(f for f in found if f.code == "intake.in_review")
    assert in_review.severity == "warning" and not in_review.remind  # no letter asking for the form again


def test_the_exact_name_in_review_is_in_review_too() -> None:
    checks = checks_for(CHECKS)
    match = PatientIndex([record("Müller", in_review=True)]).match(appt("Jurgen", "MULLER"))
    assert match.matched_by == "name_dob"
    assert "intake.in_review" in codes(evaluate(appt("Jurgen", "MULLER"), match, checks, today=date(2026, 3, 2)))


def test_a_filed_record_one_letter_away_is_someone_else() -> None:
    checks = checks_for(CHECKS)
    match = PatientIndex([record("Miller", in_review=False)]).match(appt("Jürgen", "Müller"))
    assert match.record is None
    assert "intake.missing" in codes(evaluate(appt("Jürgen", "Müller"), match, checks, today=date(2026, 3, 2)))


def test_no_tolerance_without_the_date_of_birth_or_first_name_or_beyond_two_slips() -> None:
    index = PatientIndex([record("MÜULLER", in_review=True)])
    assert index.match(appt("Jürgen", "Müller", dob=date(1961, 5, 15))).record is None
    assert index.match(appt("Klaus", "Müller")).record is None
    assert index.match(appt("Jürgen", "Mahler")).record is None  # two slips in a short name
    two = PatientIndex([record("MÜULLER", in_review=True, pid="pat-1"), record("MULLERR", in_review=True, pid="pat-2")])
    assert two.match(appt("Jürgen", "Müller")).ambiguous  # two near misses: staff choose, nobody guesses


def test_a_checks_file_from_before_the_rule_gets_the_shipped_one(tmp_path: Path) -> None:
    text = CHECKS.read_text()
    start = text.index("  intake_in_review:")
    end = text.index("  intake_signed:")
    old = tmp_path / "checks.yaml"
    old.write_text(text[:start] + text[end:])
    assert load_checks(old).config.rules["intake_in_review"].code == "intake.in_review"


def test_the_records_database_marks_a_form_in_review(tmp_path: Path, settings: Any) -> None:
    from frontdesk.checks.store import CheckStore
    from frontdesk.db import open_database
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.fixtures.generator import generate

    inbox = tmp_path / "inbox"
    cases = generate(inbox, 2, seed=1671, kinds=("digital",), scenarios=("unsigned", "complete"))
    (inbox / "truth.json").unlink()
    outcomes = process_batch([inbox], Pipeline(settings))
    assert sorted(o.status for o in outcomes) == ["filed", "needs_review"]
    db = open_database(settings)
    dobs = {date.fromisoformat(str(c.truth["patient.date_of_birth"])) for c in cases}
    got = {r.last_name: r.intake.in_review for r in CheckStore(db).candidates(set(), dobs) if r.intake}
    want = {str(c.truth["patient.last_name"]): c.scenario == "unsigned" for c in cases}
    assert got == want
    db.dispose()

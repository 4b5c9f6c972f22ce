"""Appointment -> record: by MRN, else name and date of birth, tolerant of spelling, never of nicknames."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from frontdesk.checks.appointments import Appointment
from frontdesk.checks.matching import PatientIndex, mrn_key, name_key
from frontdesk.checks.patients import PatientRecord

DOB = date(1971, 5, 9)


def rec(pid: str, first: str, last: str, dob: date = DOB, mrn: str | None = None) -> PatientRecord:
    return PatientRecord(pid, first, last, dob, mrn=mrn)


def appt(first: str | None, last: str | None, dob: date | None = DOB, mrn: str | None = None) -> Appointment:
    return Appointment(where="row 2", start=datetime(2026, 3, 3, 9), provider="Dr. Kim", first_name=first,
                       last_name=last, date_of_birth=dob, mrn=mrn)


@pytest.mark.parametrize("a,b", [
    ("José García-López", "JOSE GARCIA LOPEZ"), ("O'Neil", "ONeil"), ("Łukasiewicz", "Lukasiewicz"),
    ("Ødegård", "odegard"), ("Nguyễn", "NGUYEN"), ("Trần", "Tran"), ("Đức", "Duc"), ("Zoë", "zoe"),
    ("Mary-Kate", "Mary Kate"), ("Saint-Pierre", "SAINT PIERRE"), ("Müller", "Muller"),
])
def test_name_keys_fold_spelling(a: str, b: str) -> None:
    assert name_key(a) == name_key(b) != ""


@pytest.mark.parametrize("a,b", [("Robert", "Bob"), ("Jon", "John"), ("Ann", "Anne"), ("Muller", "Mueller")])
def test_name_keys_do_not_guess(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_mrn_keys() -> None:
    assert mrn_key("00012345") == mrn_key("12345") == mrn_key(" 12-345 ")
    assert mrn_key("A-0012") == "A0012"  # zeros inside are significant
    assert mrn_key(None) == ""


def test_mrn_wins_over_name() -> None:
    r1, r2 = rec("p1", "Jane", "Doe", mrn="555"), rec("p2", "Jane", "Doe", date(1980, 1, 1))
    idx = PatientIndex([r1, r2])
    m = idx.match(appt("Janet", "Smith", date(1999, 9, 9), mrn="000555"))  # name changed, MRN is the truth
    assert m.record is r1 and m.matched_by == "mrn"


def test_name_and_dob_when_no_mrn() -> None:
    r = rec("p1", "José", "García-López")
    m = PatientIndex([r]).match(appt("JOSE", "GARCIA LOPEZ"))
    assert m.record is r and m.matched_by == "name_dob"


def test_unknown_mrn_falls_back_to_name_but_not_onto_another_mrn() -> None:
    plain = rec("p1", "Jane", "Doe")
    assert PatientIndex([plain]).match(appt("Jane", "Doe", mrn="777")).record is plain
    other = rec("p2", "Jane", "Doe", mrn="888")
    m = PatientIndex([other]).match(appt("Jane", "Doe", mrn="777"))
    assert m.record is None and not m.ambiguous  # same name and birthday, different patient


def test_dob_must_agree_and_nicknames_do_not_match() -> None:
    r = rec("p1", "Robert", "Smith")
    idx = PatientIndex([r])
    assert idx.match(appt("Robert", "Smith", date(1971, 5, 10))).record is None
    assert idx.match(appt("Bob", "Smith")).record is None
    assert idx.match(appt("Robert", None)).record is None


def test_middle_name_on_one_side_only() -> None:
    r = rec("p1", "Anne Marie", "Dupont")
    assert PatientIndex([r]).match(appt("Anne", "Dupont")).record is r
    r2 = rec("p2", "Anne", "Dupont")
    # With "Anne" on file too, the exact first name decides.
    assert PatientIndex([r, r2]).match(appt("Anne", "Dupont")).record is r2


def test_two_records_for_one_person_are_ambiguous() -> None:
    a, b = rec("p1", "Jane", "Doe"), rec("p2", "JANE", "DOE")
    m = PatientIndex([a, b]).match(appt("Jane", "Doe"))
    assert m.record is None and {r.patient_id for r in m.ambiguous} == {"p1", "p2"}
    m = PatientIndex([rec("p1", "Jane", "Doe", mrn="1"), rec("p2", "Jo", "Roe", mrn="0001")]).match(
        appt("Jane", "Doe", mrn="1"))
    assert m.record is None and len(m.ambiguous) == 2  # an MRN on two records: staff must merge them

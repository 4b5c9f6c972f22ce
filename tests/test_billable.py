"""Validators behind the pre-visit checks: each accepts the good case and names the bad one."""

from __future__ import annotations

import random
from datetime import date

import pytest

from frontdesk.billable import (
    age_on,
    check_date,
    check_date_of_birth,
    check_email,
    check_mbi,
    check_npi,
    check_phone,
    check_relationship,
    check_state,
    check_zip,
    npi_check_digit,
)

TODAY = date(2026, 3, 2)


def _npi_by_shortcut(first_nine: str) -> int:
    """CMS's published shortcut: Luhn over the nine digits plus the constant 24 for the 80840 prefix."""
    total = 24
    for i, c in enumerate(reversed(first_nine)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return (10 - total % 10) % 10


def test_npi_reference_value() -> None:
    assert check_npi("1234567893") is None
    assert npi_check_digit("123456789") == 3


@pytest.mark.parametrize("bad", ["1234567890", "123456789", "12345678931", "3234567893", "12345A7893", ""])
def test_npi_rejects(bad: str) -> None:
    assert check_npi(bad) is not None


def test_npi_check_digit_agrees_with_the_published_shortcut_and_catches_single_digit_errors() -> None:
    rnd = random.Random(11)
    for _ in range(500):
        nine = rnd.choice("12") + "".join(rnd.choice("0123456789") for _ in range(8))
        digit = npi_check_digit(nine)
        assert digit == _npi_by_shortcut(nine)
        npi = nine + str(digit)
        assert check_npi(npi) is None
        pos = rnd.randrange(1, 10)
        wrong = str((int(npi[pos]) + rnd.randint(1, 9)) % 10)
        assert check_npi(npi[:pos] + wrong + npi[pos + 1:]) is not None


@pytest.mark.parametrize("good", ["1EG4TE5MK73", "1EG4-TE5-MK73", "1eg4-te5-mk73", "9AA0A00AA00"])
def test_mbi_accepts(good: str) -> None:
    assert check_mbi(good) is None


@pytest.mark.parametrize("bad", [
    "0EG4TE5MK73",   # position 1 cannot be 0
    "1SG4TE5MK73",   # S is excluded
    "1EG4TE5MK7",    # too short
    "1EGATE5MK73",   # position 4 must be a digit
    "1EG4TE5MK7L",   # position 11 must be a digit
    "1EG4TE5LK73",   # L excluded (position 8)
    "W123456789",    # an Aetna ID is not an MBI
    "",
])
def test_mbi_rejects(bad: str) -> None:
    assert check_mbi(bad) is not None


def test_dates_of_birth() -> None:
    assert check_date_of_birth("1980-05-17", today=TODAY) is None
    assert check_date_of_birth("05/17/1980", today=TODAY) is None
    assert check_date_of_birth(date(1905, 3, 3), today=TODAY) is None  # 120, turning 121 tomorrow
    assert check_date_of_birth(date(1905, 3, 2), today=TODAY) == "gives an age over 120 years"
    assert check_date_of_birth("2026-03-03", today=TODAY) == "is in the future"
    assert check_date_of_birth("2023-02-29", today=TODAY) == "not a real date"
    assert check_date_of_birth("2024-02-29", today=TODAY) is None
    assert check_date_of_birth("yesterday", today=TODAY) == "not a real date"
    assert check_date_of_birth(None, today=TODAY) == "not a real date"
    assert check_date("2026-04-01", today=TODAY, allow_future=True) is None


def test_age_counts_birthdays() -> None:
    assert age_on(date(2000, 3, 3), TODAY) == 25
    assert age_on(date(2000, 3, 2), TODAY) == 26
    assert age_on(date(2004, 2, 29), date(2025, 2, 28)) == 20
    assert age_on(date(2004, 2, 29), date(2025, 3, 1)) == 21


@pytest.mark.parametrize("value,ok", [
    ("2175550142", True), ("(312) 555-7788", True), ("+1 217 555 0142", True),
    ("1234567890", False), ("217555014", False), ("call me", False), ("", False),
])
def test_phones(value: str, ok: bool) -> None:
    assert (check_phone(value) is None) is ok


@pytest.mark.parametrize("value,ok", [
    ("62701", True), ("62701-1234", True), ("6270", False), ("627011234", False), ("62701-12", False),
    ("00000", False), ("ABCDE", False), ("", False),
])
def test_zip(value: str, ok: bool) -> None:
    assert (check_zip(value) is None) is ok


@pytest.mark.parametrize("value,ok", [("IL", True), ("dc", True), ("PR", True), ("AE", True), ("XX", False),
                                      ("Illinois", False), ("", False)])
def test_state(value: str, ok: bool) -> None:
    assert (check_state(value) is None) is ok


@pytest.mark.parametrize("value,ok", [
    ("ana.garcia@example.com", True), ("o'neil+clinic@mail.example.org", True), ("a@b.co", True),
    ("ana.garcia@example", False), ("ana garcia@example.com", False), ("@example.com", False),
    ("ana..garcia@example.com", False), ("ana@@example.com", False), ("", False),
])
def test_email(value: str, ok: bool) -> None:
    assert (check_email(value) is None) is ok


def test_relationship_consistency() -> None:
    patient = "1990-06-01"
    assert check_relationship("parent", patient, "1962-01-01", today=TODAY) is None
    assert check_relationship("parent", patient, "2015-01-01", today=TODAY) is not None  # a "parent" aged 9
    assert check_relationship("parent", patient, "1985-01-01", today=TODAY) is not None  # 5 years older
    assert check_relationship("child", "1950-01-01", "1980-01-01", today=TODAY) is None
    assert check_relationship("child", "1980-01-01", "1950-01-01", today=TODAY) is not None  # swapped
    assert check_relationship("self", patient, patient, today=TODAY) is None
    assert check_relationship("self", patient, "1990-06-02", today=TODAY) is not None
    assert check_relationship("spouse", patient, "1988-01-01", today=TODAY) is None
    assert check_relationship("spouse", patient, "2020-01-01", today=TODAY) is not None
    assert check_relationship("other", patient, "2020-01-01", today=TODAY) is None
    # Missing dates are another rule's business.
    assert check_relationship("parent", patient, None, today=TODAY) is None
    assert check_relationship(None, patient, "2015-01-01", today=TODAY) is None


def test_reasons_never_carry_the_value() -> None:
    for fn, value in ((check_npi, "1234567890"), (check_mbi, "1SG4TE5MK73"), (check_email, "x@y"),
                      (check_zip, "6270"), (check_state, "XQ"), (check_phone, "1234567890")):
        reason = fn(value)
        assert reason and value not in reason

"""Validators behind the pre-visit completeness rules.

The normalisers in :mod:`frontdesk.normalisers` answer "what did the patient mean?"; these answer "is that
value good enough to bill and mail with?". Each returns ``None`` when the value is acceptable, else a short
reason in plain words. Reasons never repeat the value: they end up on worklists, in logs and in flags that
may be shared outside the practice.

Values arrive either normalised (``YYYY-MM-DD`` dates, upper-case IDs) or as the patient wrote them;
validators accept both where that is cheap, because records can come from older imports.
"""

from __future__ import annotations

import re
from datetime import date

import phonenumbers

from frontdesk.normalisers import US_STATES, parse_date

__all__ = [
    "MAX_AGE_YEARS",
    "age_on",
    "as_date",
    "check_date",
    "check_date_of_birth",
    "check_email",
    "check_mbi",
    "check_npi",
    "check_phone",
    "check_relationship",
    "check_state",
    "check_zip",
    "npi_check_digit",
]

MAX_AGE_YEARS = 120


def as_date(value: object, *, today: date | None = None) -> date | None:
    """A ``date`` from a date, an ISO string or a US-style string; None when it is not a real date.

    ``parse_date`` returns None for 02/30 and friends, so "real" comes for free here.
    """
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    return parse_date(value.strip(), today=today)


def age_on(born: date, on: date) -> int:
    """Whole years, the way a birthday is counted (29 February birthdays turn over on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def check_date(value: object, *, today: date | None = None, allow_future: bool = False) -> str | None:
    """A real calendar date, not in the future unless allowed (signing dates, visit dates)."""
    today = today or date.today()
    d = as_date(value, today=today)
    if d is None:
        return "not a real date"
    if not allow_future and d > today:
        return "is in the future"
    return None


def check_date_of_birth(value: object, *, today: date | None = None) -> str | None:
    """A real date, not in the future, and an age no older than any living person (120 years)."""
    today = today or date.today()
    problem = check_date(value, today=today)
    if problem:
        return problem
    born = as_date(value, today=today)
    assert born is not None
    if age_on(born, today) > MAX_AGE_YEARS:
        return f"gives an age over {MAX_AGE_YEARS} years"
    return None


def check_phone(value: object, region: str = "US") -> str | None:
    """Valid for its region according to libphonenumber (area code and exchange assigned, right length).

    A hand-written regex accepts 555-0100-style and unassigned area codes that a reminder call cannot reach.
    """
    if not isinstance(value, str) or not value.strip():
        return "is missing"
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return "not a phone number"
    if not phonenumbers.is_possible_number(number):
        return "has the wrong number of digits"
    if not phonenumbers.is_valid_number(number):
        return "not a valid phone number"
    return None


_ZIP = re.compile(r"^\d{5}(-\d{4})?$")


def check_zip(value: object) -> str | None:
    """Five digits, or ZIP+4 with a dash, the form the mail batch prints."""
    if not isinstance(value, str) or not value.strip():
        return "is missing"
    if not _ZIP.match(value.strip()):
        return "not a ZIP code (5 digits, or ZIP+4)"
    if value.strip().startswith("00000"):
        return "not a ZIP code in use"
    return None


def check_state(value: object) -> str | None:
    """A USPS two-letter code: states, DC, territories and military ``AA/AE/AP``."""
    if not isinstance(value, str) or not value.strip():
        return "is missing"
    if value.strip().upper() not in US_STATES:
        return "not a US state or territory code"
    return None


# Deliberately simple: one @, a dot in the domain, no spaces. Full RFC 5322 accepts addresses no patient
# portal would, and rejecting a real address costs more than letting a typo through to a bounce.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")


def check_email(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "is missing"
    text = value.strip()
    if ".." in text or not _EMAIL.match(text):
        return "not an e-mail address"
    return None


# Medicare Beneficiary Identifier (CMS "MBI format specifications"): 11 positions
#   1 C: 1-9   2 A   3 AN   4 N   5 A   6 AN   7 N   8 A   9 A   10 N   11 N
# where A is a letter other than S, L, O, I, B, Z (they read as digits) and AN is A or a digit.
_MBI_A = "ACDEFGHJKMNPQRTUVWXY"
_MBI_AN = _MBI_A + "0123456789"
_MBI = re.compile(
    rf"^[1-9][{_MBI_A}][{_MBI_AN}]\d[{_MBI_A}][{_MBI_AN}]\d[{_MBI_A}][{_MBI_A}]\d\d$"
)


def check_mbi(value: object) -> str | None:
    """Medicare MBI format. Printed with dashes (1EG4-TE5-MK73); stored without. There is no check digit."""
    if not isinstance(value, str) or not value.strip():
        return "is missing"
    text = re.sub(r"[\s-]", "", value).upper()
    if len(text) != 11:
        return "not a Medicare number (11 characters, e.g. 1EG4-TE5-MK73)"
    if not _MBI.match(text):
        return "not a Medicare number (letters and digits in the wrong places)"
    return None


def npi_check_digit(first_nine: str) -> int:
    """The NPI's tenth digit: Luhn over the card-issuer prefix 80840 followed by the first nine digits.

    The prefix turns the NPI into an ISO 7812 card number; its digits contribute a constant 24 to the
    Luhn sum, which is why published shortcuts add 24. Computing over the full prefix keeps it evident.
    """
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("expected nine digits")
    digits = [int(c) for c in "80840" + first_nine]
    total = 0
    # Doubling starts from the rightmost digit of the payload, since the check digit will follow it.
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def check_npi(value: object) -> str | None:
    """Ten digits, first digit 1 or 2 (individual / organisation), with a valid check digit."""
    if not isinstance(value, str) or not value.strip():
        return "is missing"
    text = re.sub(r"[\s-]", "", value)
    if len(text) != 10 or not text.isdigit():
        return "not an NPI (10 digits)"
    if text[0] not in "12":
        return "not an NPI (must start with 1 or 2)"
    if npi_check_digit(text[:9]) != int(text[9]):
        return "not an NPI (check digit does not match)"
    return None


def check_relationship(relationship: object, patient_dob: object, subscriber_dob: object, *,
                       min_generation_gap: int = 12, adult_age: int = 14,
                       today: date | None = None) -> str | None:
    """Does the subscriber's relationship to the patient fit their two dates of birth?

    The form asks for the *subscriber's* relationship to the patient, so ``parent`` means the policy
    holder is the patient's parent (and must be older by a generation), ``child`` means the policy holder
    is the patient's child (and must be younger by one), ``self`` means the same person (same date of
    birth), ``spouse`` means an adult. A swapped relationship is the usual cause: a parent who writes
    "child" because the patient is their child. Claims with the wrong code are denied.

    Returns None when a date needed for the comparison is missing or unreadable: other rules report that.
    """
    if not isinstance(relationship, str) or not relationship:
        return None
    today = today or date.today()
    p = as_date(patient_dob, today=today)
    s = as_date(subscriber_dob, today=today)
    if p is None or s is None:
        return None
    rel = relationship.strip().lower()
    if rel == "self":
        return None if p == s else "subscriber is the patient but the dates of birth differ"
    if rel == "parent" and age_on(s, p) < min_generation_gap:
        return "a parent subscriber must be a generation older than the patient"
    if rel == "child" and age_on(p, s) < min_generation_gap:
        return "a child subscriber must be a generation younger than the patient"
    if rel == "spouse" and age_on(s, today) < adult_age:
        return "a spouse subscriber cannot be a child"
    return None

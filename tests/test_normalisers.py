"""Normalisation as staff see it: what a patient writes becomes the value in the record."""

from __future__ import annotations

import pytest

from frontdesk.normalisers import (
    norm_checkbox,
    norm_date,
    norm_email,
    norm_id,
    norm_name,
    norm_phone,
    norm_sex,
    norm_signature,
    norm_state,
    norm_zip,
)


@pytest.mark.parametrize(("raw", "value"), [
    ("03/14/1985", "1985-03-14"), ("3/4/1985", "1985-03-04"), ("1985-03-14", "1985-03-14"),
    ("03-14-1985", "1985-03-14"), ("03.14.1985", "1985-03-14"), ("", None), (None, None),
])
def test_dates_become_iso(raw: str | None, value: str | None) -> None:
    assert norm_date(raw) == (value, None)


def test_impossible_date_is_flagged_not_guessed() -> None:
    value, problem = norm_date("02/30/1990")
    assert value is None and problem


@pytest.mark.parametrize("raw", ["(217) 555-0142", "217-555-0142", "217.555.0142", "+1 217 555 0142", "2175550142"])
def test_phones_become_ten_digits(raw: str) -> None:
    assert norm_phone(raw) == ("2175550142", None)


def test_short_phone_is_invalid() -> None:
    assert norm_phone("555-0142")[1]


@pytest.mark.parametrize(("raw", "value"), [("il", "IL"), ("Illinois", "IL"), ("N.Y.", "NY")])
def test_states(raw: str, value: str) -> None:
    assert norm_state(raw) == (value, None)


def test_unknown_state_is_flagged() -> None:
    assert norm_state("QQ")[1]


@pytest.mark.parametrize(("raw", "value"), [("62701", "62701"), ("62701-1234", "62701-1234"), ("627011234", "62701-1234")])
def test_zip(raw: str, value: str) -> None:
    assert norm_zip(raw) == (value, None)


def test_member_ids_lose_spaces_and_dashes() -> None:
    assert norm_id("xgh 4821-7730") == ("XGH48217730", None)


def test_names_keep_diacritics_and_punctuation() -> None:
    for name in ("Müller", "Gonçalves", "Noël", "José", "O'Neil", "Smith-Jones", "Nguyễn"):
        assert norm_name(name) == (name, None)
    assert norm_name("  Mary   Ann ") == ("Mary Ann", None)


def test_sex_email_checkbox_signature() -> None:
    assert norm_sex("female") == ("F", None)
    assert norm_sex("M") == ("M", None)
    assert norm_email(" John.Doe@Example.COM ") == ("john.doe@example.com", None)
    assert norm_checkbox("/Yes") == (True, None)
    assert norm_checkbox("/Off") == (False, None)
    assert norm_checkbox(None) == (False, None)
    assert norm_signature("Jane Q. Public") == (True, None)
    assert norm_signature("") == (False, None)


def test_an_email_at_a_misspelt_mailbox_provider_is_flagged_not_stored_quietly() -> None:
    """Mail sent to "yanoo.com" is lost: a domain one slip away from a common provider goes to a person."""
    for typo, provider in (("lauren@yanoo.com", "yahoo.com"), ("ana@gmial.com", "gmail.com"),
                           ("bo@hotmail.co", "hotmail.com"), ("cy@outlok.com", "outlook.com")):
        value, problem = norm_email(typo)
        assert value == typo and problem is not None and provider in problem
    for fine in ("lauren@yahoo.com", "ana@gmail.com", "x@ymail.com", "d@mail.com", "s@lakeside-clinic.org"):
        assert norm_email(fine) == (fine, None)


def test_a_hyphenated_name_read_with_a_gap_is_one_name() -> None:
    assert norm_name("ANNE- MARIE INGRAM") == ("ANNE-MARIE INGRAM", None)
    assert norm_name("Saint -Pierre") == ("Saint-Pierre", None)
    assert norm_name("Jean - Luc") == ("Jean-Luc", None)

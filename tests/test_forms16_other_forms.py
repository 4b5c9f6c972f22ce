"""The forms besides registration (issue 16): each is recognised by its own form id from a digital and a
scanned copy, read as written, and a wrong NPI sends the form to review. Forms come from the seeded
generators into tmp folders."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from frontdesk.extraction import Reader
from frontdesk.settings import default_settings
from tests.fixtures import generator as gen
from tests.fixtures import scans

FORMS = Path(__file__).resolve().parents[1] / "templates" / "forms"
TODAY = date(2026, 12, 5)
OTHER = ("hipaa_acknowledgment", "release_of_information", "financial_policy")


@pytest.fixture(scope="module")
def reader() -> Reader:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    return Reader(default_settings())


@pytest.mark.parametrize("form_id", OTHER)
def test_digital_copy_recognised_and_read(form_id: str, reader: Reader, tmp_path: Path) -> None:
    cases = gen.generate(tmp_path, 2, seed=161, kinds=("digital", "flattened"), scenarios=("complete",),
                         template=FORMS / f"{form_id}.pdf", today=TODAY)
    for case in cases:
        result = reader.extract(case.path)
        assert (result.document_type, result.form) == ("intake_form", form_id), case.kind
        assert {k: result.value(k) for k in case.truth} == case.truth, case.kind
        assert not result.has_errors(), case.kind


@pytest.mark.parametrize("form_id", OTHER)
def test_scanned_copy_recognised_and_signed(form_id: str, reader: Reader, tmp_path: Path) -> None:
    cases = scans.generate_scans(tmp_path, 1, seed=162, tiers=("scan300",), scenarios=("complete",),
                                 template=FORMS / f"{form_id}.pdf", today=TODAY)
    result = reader.extract(cases[0].path)
    assert (result.document_type, result.form, result.method) == ("intake_form", form_id, "ocr")
    assert result.value(f"{form_id}.signature") is True
    assert result.value("patient.date_of_birth") == cases[0].truth["patient.date_of_birth"]


def test_unsigned_form_flags_the_missing_signature(reader: Reader, tmp_path: Path) -> None:
    case = gen.generate(tmp_path, 1, seed=163, kinds=("digital",), scenarios=("unsigned",),
                        template=FORMS / "hipaa_acknowledgment.pdf", today=TODAY)[0]
    result = reader.extract(case.path)
    assert ("missing", "hipaa_acknowledgment.signature") in {(f.code, f.field) for f in result.flags}
    assert result.needs_review()


def test_wrong_npi_is_flagged_for_review(reader: Reader, tmp_path: Path) -> None:
    case = gen.generate(tmp_path / "ok", 1, seed=164, kinds=("digital",), scenarios=("complete",),
                        template=FORMS / "release_of_information.pdf", today=TODAY)[0]
    good = str(case.truth["referral.physician_npi"])
    assert not reader.extract(case.path).needs_review()
    bad = good[:9] + str((int(good[9]) + 1) % 10)  # one digit off: the check digit no longer fits
    values = {**case.patient, "referral.physician_npi": bad}
    gen.fill_digital(FORMS / "release_of_information.pdf", values, tmp_path / "bad.pdf")
    result = reader.extract(tmp_path / "bad.pdf")
    flags = [f for f in result.flags if f.field == "referral.physician_npi"]
    assert [(f.code, f.severity) for f in flags] == [("invalid", "error")]
    assert "check digit" in flags[0].message and bad not in flags[0].message
    assert result.needs_review()

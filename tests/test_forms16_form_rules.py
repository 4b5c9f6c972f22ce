"""A pre-visit rule can require a form besides registration (issue 16): "HIPAA acknowledgment signed
within 12 months". The rule names the form id and the most months its signature date may lie before the
visit; the clock is fixed (the visit date), so the months are counted the same on any day."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from frontdesk.checks.appointments import Appointment
from frontdesk.checks.config import load_checks
from frontdesk.checks.matching import Match
from frontdesk.checks.patients import IntakeOnFile, PatientRecord
from frontdesk.checks.rules import add_months, evaluate
from tests.conftest import ROOT

VISIT = datetime(2026, 12, 7, 9, 30)
TODAY = date(2026, 12, 5)
CODE = "hipaa.acknowledgment_expired"


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The shipped checks.yaml with the shipped HIPAA rule switched on."""
    data = yaml.safe_load((ROOT / "config" / "checks.yaml").read_text(encoding="utf-8"))
    data["form_rules"]["hipaa_acknowledgment_current"]["enabled"] = True
    path = Path(tmp_path_factory.mktemp("cfg")) / "checks.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_checks(path)


def _codes(checks, signed: dict[str, date]) -> set[str]:  # type: ignore[no-untyped-def]
    intake = IntakeOnFile("doc-1", date(2026, 11, 1), True, True, date(2026, 11, 1))
    rec = PatientRecord("pat-1", "Jane", "Doe", date(1980, 4, 5), fields={}, intake=intake, signed_forms=signed)
    a = Appointment(where="row 2", start=VISIT, provider="Dr. Kim", first_name="Jane", last_name="Doe",
                    date_of_birth=date(1980, 4, 5))
    return {f.code for f in evaluate(a, Match(rec, "name_dob", []), checks, today=TODAY)}


def test_signed_eleven_months_ago_passes(checks) -> None:  # type: ignore[no-untyped-def]
    assert CODE not in _codes(checks, {"hipaa_acknowledgment": add_months(VISIT.date(), -11)})


def test_signed_thirteen_months_ago_is_listed(checks) -> None:  # type: ignore[no-untyped-def]
    assert CODE in _codes(checks, {"hipaa_acknowledgment": add_months(VISIT.date(), -13)})


def test_none_on_file_is_listed_and_another_form_does_not_count(checks) -> None:  # type: ignore[no-untyped-def]
    assert CODE in _codes(checks, {})
    assert CODE in _codes(checks, {"financial_policy": VISIT.date()})


def test_message_names_the_months_and_rule_is_off_as_shipped(checks) -> None:  # type: ignore[no-untyped-def]
    intake = IntakeOnFile("doc-1", date(2026, 11, 1), True, True, date(2026, 11, 1))
    rec = PatientRecord("pat-1", "Jane", "Doe", date(1980, 4, 5), intake=intake)
    a = Appointment(where="row 2", start=VISIT, provider="Dr. Kim", first_name="Jane", last_name="Doe",
                    date_of_birth=date(1980, 4, 5))
    found = [f for f in evaluate(a, Match(rec, "name_dob", []), checks, today=TODAY) if f.code == CODE]
    assert found and "12 months" in found[0].message
    shipped = load_checks(ROOT / "config" / "checks.yaml")
    assert CODE not in {f.code for f in evaluate(a, Match(rec, "name_dob", []), shipped, today=TODAY)}

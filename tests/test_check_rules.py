"""Each rule fires on its gap, names the missing items in plain words, and stays quiet otherwise.

Every test starts from one complete record and breaks exactly one thing, so a rule that fires too
often shows up as an extra code as surely as one that does not fire shows up as a missing one.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from frontdesk.checks.appointments import Appointment
from frontdesk.checks.config import CHECK_NAMES, load_checks
from frontdesk.checks.matching import Match
from frontdesk.checks.patients import IntakeOnFile, PatientRecord
from frontdesk.checks.rules import add_months, evaluate, join_items
from frontdesk.exceptions import ConfigError
from tests.conftest import ROOT

VISIT = datetime(2026, 3, 3, 9, 30)
TODAY = date(2026, 3, 2)
CHECKS = load_checks(ROOT / "config" / "checks.yaml")


def complete_fields() -> dict[str, Any]:
    return {
        "patient.first_name": "Jane", "patient.last_name": "Doe", "patient.date_of_birth": "1980-04-05",
        "patient.phone": "2175550142", "patient.email": "jane.doe@example.com",
        "patient.address.street": "12 Oak St", "patient.address.city": "Springfield",
        "patient.address.state": "IL", "patient.address.zip": "62701",
        "insurance.self_pay": False,
        "insurance.primary.payer_name": "Aetna", "insurance.primary.member_id": "W123456789",
        "insurance.primary.subscriber_name": "Jane Doe", "insurance.primary.subscriber_date_of_birth": "1980-04-05",
        "insurance.primary.relationship_to_patient": "self",
        "insurance.secondary.payer_name": None, "insurance.secondary.member_id": None,
        "insurance.secondary.group_number": None,
    }


def record(**changes: Any) -> PatientRecord:
    fields = complete_fields()
    fields.update({k.replace("__", "."): v for k, v in changes.items() if k != "intake"})
    intake = changes.get("intake", IntakeOnFile("doc-1", date(2025, 9, 1), True, True, date(2025, 9, 1)))
    return PatientRecord("pat-1", "Jane", "Doe", date(1980, 4, 5), fields=fields, intake=intake)


def codes(r: PatientRecord | None, *, referring: str | None = None, checks: Any = CHECKS,
          ambiguous: list[PatientRecord] | None = None) -> set[str]:
    a = Appointment(where="row 2", start=VISIT, provider="Dr. Kim", first_name="Jane", last_name="Doe",
                    date_of_birth=date(1980, 4, 5), referring_npi=referring)
    match = Match(r, "name_dob" if r else None, ambiguous or [])
    return {f.code for f in evaluate(a, match, checks, today=TODAY)}


def findings(r: PatientRecord) -> dict[str, Any]:
    a = Appointment(where="row 2", start=VISIT, provider="Dr. Kim")
    return {f.code: f for f in evaluate(a, Match(r, "mrn"), CHECKS, today=TODAY)}


def test_complete_record_has_no_findings() -> None:
    assert codes(record()) == set()


def test_no_record_or_no_form_is_one_finding() -> None:
    assert codes(None) == {"intake.missing"}
    assert codes(record(intake=None, patient__phone=None, insurance__primary__member_id=None)) == {"intake.missing"}
    assert codes(None, referring="1234567890") == {"intake.missing", "referral.npi_invalid"}
    assert codes(None, ambiguous=[record(), record()]) == {"patient.match_ambiguous"}


def test_intake_signed_and_current() -> None:
    assert codes(record(intake=IntakeOnFile("d", date(2026, 2, 1), False, True))) == {"intake.unsigned"}
    assert codes(record(intake=IntakeOnFile("d", date(2026, 2, 1), True, False, date(2026, 2, 1)))) == {
        "hipaa.unsigned"}
    # Twelve months before the visit is still current; one day more is not.
    assert codes(record(intake=IntakeOnFile("d", date(2025, 3, 3), True, True, date(2025, 3, 3)))) == set()
    assert codes(record(intake=IntakeOnFile("d", date(2025, 3, 5), True, True, date(2025, 3, 2)))) == {
        "intake.expired"}
    # Undated signature: the day the form arrived counts.
    assert codes(record(intake=IntakeOnFile("d", date(2025, 1, 5), True, True, None))) == {"intake.expired"}
    f = findings(record(intake=IntakeOnFile("d", date(2024, 1, 5), True, True, date(2024, 1, 5))))
    assert f["intake.expired"].message == "Your patient form is more than 12 months old. Please fill in a new one."


def test_add_months() -> None:
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2024, 2, 29), -12) == date(2023, 2, 28)
    assert add_months(date(2026, 1, 15), -13) == date(2024, 12, 15)


def test_primary_insurance_items_in_plain_words() -> None:
    f = findings(record(insurance__primary__member_id=None, insurance__primary__subscriber_name=" "))
    assert set(f) == {"insurance.primary.incomplete"}
    assert f["insurance.primary.incomplete"].items == ("your member ID", "the name of the policy holder")
    assert f["insurance.primary.incomplete"].message == (
        "We need more about your insurance: your member ID and the name of the policy holder. "
        "Please bring your insurance card.")


def test_self_pay_needs_no_insurance() -> None:
    blank = {f"insurance__primary__{k}": None for k in ("payer_name", "member_id", "subscriber_name",
                                                        "subscriber_date_of_birth", "relationship_to_patient")}
    assert codes(record(**blank)) == {"insurance.primary.incomplete"}
    assert codes(record(insurance__self_pay=True, **blank)) == set()
    assert codes(record(insurance__self_pay=True, insurance__secondary__payer_name="Cigna", **blank)) == set()


@pytest.mark.parametrize("payer,member_id,bad", [
    ("Aetna", "W123456789", False), ("Aetna", "W12345678", True), ("aetna inc.", "X123456789", True),
    ("UHC", "123456789012", True), ("UnitedHealthcare", "12345678901", False),
    ("Medicare", "1EG4TE5MK73", False), ("Medicare", "1EG4-TE5-MK73", False), ("Medicare", "123456789A", True),
    ("BCBS", "XOF123456789", False), ("Prairie Mutual Health Plan", "anything-goes", False),
])
def test_member_id_pattern_per_payer(payer: str, member_id: str, bad: bool) -> None:
    got = codes(record(insurance__primary__payer_name=payer, insurance__primary__member_id=member_id))
    assert got == ({"insurance.primary.member_id_invalid"} if bad else set())


def test_subscriber_date_of_birth_only_when_subscriber_is_someone_else() -> None:
    assert codes(record(insurance__primary__subscriber_date_of_birth=None)) == set()  # self
    other = dict(insurance__primary__relationship_to_patient="spouse", insurance__primary__subscriber_name="John Doe")
    assert codes(record(insurance__primary__subscriber_date_of_birth=None, **other)) == {
        "insurance.primary.subscriber_dob_missing"}
    assert codes(record(insurance__primary__subscriber_date_of_birth="2031-01-01", **other)) == {
        "insurance.primary.subscriber_dob_missing"}
    assert codes(record(insurance__primary__subscriber_date_of_birth="1979-01-01", **other)) == set()


def test_relationship_consistency() -> None:
    parent = dict(insurance__primary__relationship_to_patient="parent", insurance__primary__subscriber_name="Mo Doe")
    assert codes(record(insurance__primary__subscriber_date_of_birth="1955-01-01", **parent)) == set()
    assert codes(record(insurance__primary__subscriber_date_of_birth="1984-01-01", **parent)) == {
        "insurance.primary.relationship_inconsistent"}
    assert codes(record(insurance__primary__subscriber_date_of_birth="1979-01-01")) == {
        "insurance.primary.relationship_inconsistent"}  # "self" with another birth date


def test_secondary_insurance_when_present() -> None:
    assert codes(record(insurance__secondary__group_number="G1")) == {"insurance.secondary.incomplete"}
    f = findings(record(insurance__secondary__payer_name="Cigna"))
    assert f["insurance.secondary.incomplete"].items == ("the member ID on that card",)
    assert codes(record(insurance__secondary__payer_name="Cigna", insurance__secondary__member_id="U1234567801")) == set()


@pytest.mark.parametrize("key,value,item", [
    ("patient__address__street", None, "street and number"), ("patient__address__city", "", "city"),
    ("patient__address__state", "ZZ", "state"), ("patient__address__zip", "6270", "ZIP code"),
    ("patient__address__zip", None, "ZIP code"),
])
def test_mailing_address(key: str, value: Any, item: str) -> None:
    f = findings(record(**{key: value}))
    assert set(f) == {"address.incomplete"} and f["address.incomplete"].items == (item,)


def test_demographics() -> None:
    assert codes(record(patient__date_of_birth="1890-01-01")) == {"patient.dob_invalid"}
    assert codes(record(patient__phone="1234567890")) == {"patient.phone_invalid"}
    assert codes(record(patient__phone=None)) == {"patient.phone_invalid"}
    assert codes(record(patient__email="jane@example")) == {"patient.email_invalid"}
    assert codes(record(patient__email=None)) == set()  # e-mail is optional


def test_referring_npi() -> None:
    assert codes(record(), referring="1234567893") == set()
    assert codes(record(), referring="1234567894") == {"referral.npi_invalid"}


def test_join_items() -> None:
    assert join_items([]) == "" and join_items(["a"]) == "a" and join_items(["a", "b", "c"]) == "a, b and c"


# ---- config ----------------------------------------------------------------------------------------

def edited_config(tmp_path: Path, edit: Any, payers: Any = None) -> Path:
    data = yaml.safe_load((ROOT / "config" / "checks.yaml").read_text(encoding="utf-8"))
    edit(data)
    p = tmp_path / "checks.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    if payers is not None:
        (tmp_path / "payers.yaml").write_text(yaml.safe_dump(payers), encoding="utf-8")
    return p


def test_shipped_config_covers_every_check() -> None:
    assert set(CHECKS.config.rules) == set(CHECK_NAMES)


def test_disabled_rule_and_custom_message(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["rules"]["phone_valid"]["enabled"] = False
        d["rules"]["hipaa_acknowledged"]["message"] = "Sign the privacy notice ({unknown})."
        d["intake_max_age_months"] = 6

    checks = load_checks(edited_config(tmp_path, edit), payers_file=tmp_path / "none.yaml")
    r = record(patient__phone=None, intake=IntakeOnFile("d", date(2025, 8, 1), True, False, date(2025, 8, 1)))
    a = Appointment(where="row 2", start=VISIT, provider="Dr. Kim")
    f = {x.code: x for x in evaluate(a, Match(r, "mrn"), checks, today=TODAY)}
    assert set(f) == {"hipaa.unsigned", "intake.expired"}
    assert f["hipaa.unsigned"].message == "Sign the privacy notice ({unknown})."
    assert "6 months" in f["intake.expired"].message


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["rules"].pop("phone_valid"), "no entry for phone_valid"),
    (lambda d: d["rules"].__setitem__("typo_rule", d["rules"]["phone_valid"]), "unknown check(s) typo_rule"),
    (lambda d: d["rules"]["phone_valid"].__setitem__("severity", "fatal"), "rules.phone_valid.severity"),
    (lambda d: d["rules"]["phone_valid"].__setitem__("code", "intake.missing"), "used twice: intake.missing"),
    (lambda d: d["payers"]["Aetna"].__setitem__("member_id", "^W(\\d{9}$"), "payer Aetna: member ID pattern"),
    (lambda d: d["appointments"]["csv_formats"]["ehr_export"]["columns"].pop("provider"), "required field(s) provider have no column"),
    (lambda d: d["appointments"].__setitem__("encoding", "klingon"), "appointments.encoding"),
])
def test_config_mistakes_are_errors(tmp_path: Path, edit: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as e:
        load_checks(edited_config(tmp_path, edit), payers_file=tmp_path / "none.yaml")
    assert message in str(e.value)


def test_payers_file_overrides_checks_yaml(tmp_path: Path) -> None:
    payers = {"payers": [
        {"name": "Aetna", "aliases": ["Aetna Better Health"], "member_id": r"^A\d{4}$"},
        {"name": "Humana"},  # listed without a format: IDs vary, nothing is enforced
        {"name": "Acme Health", "member_id": r"^AC\d{6}$"},
    ]}
    path = edited_config(tmp_path, lambda d: None, payers)
    checks = load_checks(path)  # payers.yaml beside checks.yaml is picked up
    aetna = checks.payers.for_payer("aetna better health")
    assert aetna is not None and aetna.pattern is not None and aetna.pattern.pattern == r"^A\d{4}$"
    assert checks.payers.for_payer("Humana") is None
    assert checks.payers.for_payer("ACME HEALTH") is not None
    assert checks.payers.for_payer("Cigna") is not None  # still from checks.yaml


def test_shipped_payers_file_is_used_when_present(tmp_path: Path) -> None:
    shipped = ROOT / "config" / "payers.yaml"
    if not shipped.is_file():
        pytest.skip("config/payers.yaml is not in this checkout")
    beside = tmp_path / "with"
    beside.mkdir()
    shutil.copy(shipped, beside / "payers.yaml")
    with_file = load_checks(edited_config(beside, lambda d: None))
    without = load_checks(edited_config(tmp_path, lambda d: None), payers_file=tmp_path / "missing.yaml")
    assert len(with_file.payers) > len(without.payers)
    for payer in CHECKS.config.payers:  # every payer the checks ship with keeps a format
        assert with_file.payers.for_payer(payer) is not None, payer

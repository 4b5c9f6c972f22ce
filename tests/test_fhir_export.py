"""`frontdesk patients export --fhir`: Patient, Coverage and DocumentReference for a patient or a day, read
back by an independent FHIR library (fhir.resources' R4B models), the documents beside the bundle, no
patient data in any file name, every export audited."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from frontdesk.fhir_export import ExportError, validated
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from tests.fixtures.generator import Case, generate
from tests.s3server import run_main as run_cli


@pytest.fixture
def filed(tmp_path: Path, settings) -> list[Case]:  # type: ignore[no-untyped-def]
    cases = generate(tmp_path / "inbox", 3, seed=1661, kinds=("digital",),
                     scenarios=("complete", "self_pay", "complete"))
    (tmp_path / "inbox" / "truth.json").unlink()
    process_batch([tmp_path / "inbox"], Pipeline(settings))
    return cases


def _pid(case: Case, env: dict[str, str]) -> str:
    found = run_cli("patients", "find", f"{case.truth['patient.first_name']} {case.truth['patient.last_name']}",
                    "--dob", str(case.truth["patient.date_of_birth"]), "--json", env=env)
    assert found.returncode == 0, found.stderr
    return str(json.loads(found.stdout)[0]["id"])


def _phi(case: Case) -> list[str]:
    return [str(case.truth[k]).lower() for k in ("patient.first_name", "patient.last_name", "patient.date_of_birth")]


def test_one_patient_as_fhir(tmp_path: Path, filed: list[Case], fd_env: dict[str, str]) -> None:
    env = dict(fd_env, FRONTDESK_ACTOR="reception-3")
    case = filed[0]
    pid = _pid(case, env)
    out = tmp_path / "fhir"
    done = run_cli("patients", "export", "--fhir", pid, str(out), "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["bundles"] == [str(out / f"{pid}.json")]

    bundle = Bundle.model_validate_json((out / f"{pid}.json").read_text())  # an independent reader
    by_type: dict[str, list[dict]] = {}
    for entry in json.loads((out / f"{pid}.json").read_text())["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
        assert entry["fullUrl"].startswith("urn:uuid:")
    assert bundle.type == "collection" and summary["resources"] == {k: len(v) for k, v in by_type.items()}

    patient = by_type["Patient"][0]
    t = case.truth
    assert patient["name"][0]["family"] == t["patient.last_name"]
    assert patient["name"][0]["given"] == [t["patient.first_name"]]
    assert patient["identifier"][0]["value"] == pid
    assert patient["address"][0]["postalCode"] == t["patient.address.zip"]
    assert patient["address"][0]["line"] == [t["patient.address.street"]]
    patient_urn = next(e["fullUrl"] for e in json.loads((out / f"{pid}.json").read_text())["entry"]
                       if e["resource"]["resourceType"] == "Patient")

    [coverage] = by_type["Coverage"]
    assert coverage["subscriberId"] == t["insurance.primary.member_id"]
    assert coverage["payor"][0]["display"] == t["insurance.primary.payer_name"]
    assert coverage["beneficiary"]["reference"] == patient_urn and coverage["order"] == 1

    refs = by_type["DocumentReference"]
    assert refs and all(r["subject"]["reference"] == patient_urn for r in refs)
    form = next(r for r in refs if r["type"]["coding"][0]["display"] == "Patient registration form")
    attachment = form["content"][0]["attachment"]
    data = (out / attachment["url"]).read_bytes()
    assert data == case.path.read_bytes()  # the form as it arrived
    assert attachment["size"] == len(data)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()

    names = [p.relative_to(out).as_posix().lower() for p in out.rglob("*")]
    assert all(value not in name for value in _phi(case) for name in names)  # opaque ids only
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.rglob("*") if p.is_file())

    audit = json.loads(run_cli("audit", "--patient", pid, "--json", env=env).stdout)
    mine = [(e["action"], e["object_type"]) for e in audit if e["actor"] == "reception-3"]
    assert ("export", "patient") in mine and mine.count(("export", "object")) == len(refs)


def test_a_day_as_fhir_and_self_pay_has_no_coverage(tmp_path: Path, filed: list[Case],
                                                     fd_env: dict[str, str]) -> None:
    out = tmp_path / "today"
    done = run_cli("patients", "export", "--fhir", "--day", "today", str(out), env=fd_env)
    assert done.returncode == 0, done.stderr
    bundles = sorted(out.glob("*.json"))
    assert len(bundles) == 3 and all(p.name.startswith("pat-") for p in bundles)
    self_pay = _pid(filed[1], fd_env)
    resources = [e["resource"]["resourceType"] for e in json.loads((out / f"{self_pay}.json").read_text())["entry"]]
    assert "Patient" in resources and "Coverage" not in resources and "DocumentReference" in resources

    nothing = run_cli("patients", "export", "--fhir", "--day", "2001-01-01", str(tmp_path / "none"), env=fd_env)
    assert nothing.returncode == 1 and "no documents" in nothing.stderr
    assert not (tmp_path / "none").exists()
    both = run_cli("patients", "export", "--fhir", "--day", "today", self_pay, str(tmp_path / "x"), env=fd_env)
    assert both.returncode == 2 and "one of them" in both.stderr
    unknown = run_cli("patients", "export", "--fhir", "pat-000000000000", str(tmp_path / "y"), env=fd_env)
    assert unknown.returncode == 1 and "no patient pat-000000000000" in unknown.stderr


def test_a_resource_the_library_refuses_is_reported_without_patient_data() -> None:
    with pytest.raises(ExportError) as caught:
        validated({"resourceType": "Coverage", "id": "pat-1-primary", "status": "active",
                   "subscriberId": "XQK83920417", "beneficiary": {"reference": "urn:uuid:x"}})  # no payor
    assert "payor" in str(caught.value) and "XQK83920417" not in str(caught.value)

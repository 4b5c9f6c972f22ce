"""FHIR appointments as systems send them: a provider named only by ``actor.display`` (no reference,
which FHIR R4 allows) is accepted; a display-only Location is not taken for the provider; one entry with
no provider at all is reported by number and, with --skip-bad-rows, the others are checked."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from frontdesk.checks.appointments import AppointmentFileError, load_appointments
from frontdesk.checks.config import load_checks
from tests.conftest import ROOT, run_cli
from tests.fixtures.appointments import PROVIDERS, TIMEZONE, generate

TZ = ZoneInfo(TIMEZONE)
TODAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def config() -> Any:
    return load_checks(ROOT / "config" / "checks.yaml").config.appointments


def _display_only(bundle: dict[str, Any], actor_extra: dict[str, Any] | None = None, *,
                  keep_type: bool = True) -> None:
    """Every Practitioner participant loses its reference; the Practitioner resources leave the bundle."""
    npis = dict(PROVIDERS)
    for e in bundle["entry"]:
        res = e["resource"]
        if res["resourceType"] != "Appointment":
            continue
        for part in res["participant"]:
            ref = part["actor"].get("reference", "")
            if ref.startswith("Practitioner/") and "display" in part["actor"]:
                part["actor"] = {"display": part["actor"]["display"], **(actor_extra or {})}
                if npis.get(part["actor"]["display"]) and actor_extra is not None:
                    part["actor"]["identifier"] = {"system": "http://hl7.org/fhir/sid/us-npi",
                                                   "value": npis[part["actor"]["display"]]}
                if not keep_type:
                    part.pop("type", None)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Practitioner"
                       or e["resource"]["id"].startswith("ref")]


@pytest.mark.parametrize("variant", ["participant-type", "reference-type", "untyped"])
def test_display_only_providers_are_accepted(tmp_path: Path, config: Any, variant: str) -> None:
    sc = generate(12, seed=81, extra_days=1, cancelled=1, distractors=2)
    path = sc.write_fhir(tmp_path / "bundle.json")
    bundle = json.loads(path.read_text())
    if variant == "participant-type":
        _display_only(bundle)
    elif variant == "reference-type":
        _display_only(bundle, {"type": "Practitioner"}, keep_type=False)
    else:
        _display_only(bundle, keep_type=False)
    path.write_text(json.dumps(bundle))
    parsed = load_appointments(path, config, TZ, today=TODAY)
    assert parsed.problems == []
    expected = {c.appointment_id: c.provider for c in sc.cases if c.status not in ("cancelled", "noshow")}
    got = {a.external_id: a.provider for a in parsed.appointments}
    assert {k: got[k] for k in expected if k in got} == {k: v for k, v in expected.items() if k in got}
    assert len(parsed.appointments) + len(parsed.cancelled) == len(sc.cases)
    if variant == "reference-type":  # the NPI given on the display-only reference is kept
        npis = dict(PROVIDERS)
        assert all(a.provider_npi == (npis[a.provider] or None) for a in parsed.appointments)


def test_a_display_only_location_is_not_the_provider_and_the_entry_is_reported(tmp_path: Path,
                                                                               config: Any) -> None:
    sc = generate(6, seed=82, extra_days=0, cancelled=0, distractors=0)
    path = sc.write_fhir(tmp_path / "bundle.json")
    bundle = json.loads(path.read_text())
    _display_only(bundle)
    appts = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Appointment"]
    bad = appts[2]
    bad["participant"] = [p for p in bad["participant"] if "display" not in p["actor"]]
    bad["participant"].append({"actor": {"display": "Exam room 3", "type": "Location"}, "status": "accepted"})
    path.write_text(json.dumps(bundle))
    with pytest.raises(AppointmentFileError) as caught:
        load_appointments(path, config, TZ, today=TODAY)
    assert "1 bad entry" in str(caught.value)
    parsed = load_appointments(path, config, TZ, today=TODAY, skip_bad_rows=True)
    assert len(parsed.appointments) + len(parsed.cancelled) == len(sc.cases) - 1
    assert [p.reason for p in parsed.problems] == ["no Practitioner participant with a name"]
    assert "Exam room 3" not in {a.provider for a in parsed.appointments}


def test_check_command_takes_a_display_only_bundle(tmp_path: Path, fd_env: dict[str, str]) -> None:
    sc = generate(5, seed=83, extra_days=0, cancelled=0, distractors=0)
    path = sc.write_fhir(tmp_path / "bundle.json")
    bundle = json.loads(path.read_text())
    _display_only(bundle)
    path.write_text(json.dumps(bundle))
    env = dict(fd_env, FRONTDESK_CHECKS__OUTPUT_DIR=str(tmp_path / "out"))
    proc = run_cli("check", "--date", sc.visit_date.isoformat(), "--appointments", str(path), "--json",
                   "--no-pdf", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["summary"]["appointments"] == len([c for c in sc.cases if c.start.date() == sc.visit_date
                                                  and c.status not in ("cancelled", "noshow")])

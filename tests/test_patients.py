"""`frontdesk patients find|show|export`: staff find a patient, read the record, copy the documents out,
and every one of those reads is in the audit trail. The command runs in-process (same parser, handlers
and exit codes as the installed script) because the test calls it many times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from tests.fixtures.generator import Case, generate
from tests.s3server import run_main as run_cli


@pytest.fixture
def filed(tmp_path: Path, settings) -> list[Case]:  # type: ignore[no-untyped-def]
    cases = generate(tmp_path / "inbox", 3, seed=61, scenarios=("complete", "unsigned", "self_pay"))
    (tmp_path / "inbox" / "truth.json").unlink()
    process_batch([tmp_path / "inbox"], Pipeline(settings))
    return cases


def test_find_show_and_export_a_patient(tmp_path: Path, filed: list[Case], fd_env: dict[str, str]) -> None:
    env = dict(fd_env, FRONTDESK_ACTOR="reception-2")
    c = filed[1]  # unsigned: an open flag
    last, first, dob = c.truth["patient.last_name"], c.truth["patient.first_name"], c.truth["patient.date_of_birth"]
    assert isinstance(last, str) and isinstance(first, str) and isinstance(dob, str)

    found = run_cli("patients", "find", f"{first.lower()} {last.upper()}", "--json", env=env)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [(h["first_name"], h["last_name"], h["date_of_birth"]) for h in hits] == [(first, last, dob)]
    pid = hits[0]["id"]
    assert pid.startswith("pat-") and last.lower() not in pid.lower()

    wrong_dob = run_cli("patients", "find", last, "--dob", "1900-01-01", "--json", env=env)
    assert wrong_dob.returncode == 1 and json.loads(wrong_dob.stdout) == []
    assert run_cli("patients", "find", "12", env=env).returncode == 1  # no letters: nobody listed

    shown = run_cli("patients", "show", pid, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["fields"]["patient.phone"]["value"] == c.truth["patient.phone"]
    doc_id = view["documents"][0]["id"]
    assert [d["id"] for d in view["documents"]] == [doc_id]
    assert view["fields"]["patient.phone"]["source_document"] == doc_id
    assert {f["code"] for f in view["open_flags"]} >= {"missing"}
    assert all(f["document_id"] == doc_id for f in view["open_flags"])
    assert view["letters"] == []
    text = run_cli("patients", "show", pid, env=env)
    assert text.returncode == 0 and last in text.stdout and "Open flags" in text.stdout
    assert run_cli("patients", "show", "pat-000000000000", env=env).returncode == 1

    out = tmp_path / "export"
    exported = run_cli("patients", "export", pid, str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [f"{doc_id}/extraction.json", f"{doc_id}/original.pdf"]
    assert (out / doc_id / "original.pdf").read_bytes() == c.path.read_bytes()

    audit = json.loads(run_cli("audit", "--patient", pid, "--json", env=env).stdout)
    mine = [(e["action"], e["object_type"]) for e in audit if e["actor"] == "reception-2"]
    # One find named this patient (the one with the wrong date found nobody); two shows; two files.
    assert mine == [("search", "patient"), ("read", "patient"), ("read", "patient"), ("export", "object"),
                    ("export", "object")]
    assert (("create", "patient") in [(e["action"], e["object_type"]) for e in audit])

"""`frontdesk audit`: every create, read, export and change of a patient's record, by whom and when,
filtered by patient and time; the actor is FRONTDESK_ACTOR or the operating-system user."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from frontdesk import audit
from frontdesk.db import open_database
from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from tests.fixtures.generator import generate
from tests.s3server import run_main as run_cli


def test_audit_lists_by_patient_and_time(tmp_path: Path, settings, fd_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    generate(tmp_path / "inbox", 2, seed=62, scenarios=("complete",))
    (tmp_path / "inbox" / "truth.json").unlink()
    env = {k: v for k, v in fd_env.items() if k != "FRONTDESK_ACTOR"}
    process_batch([tmp_path / "inbox"], Pipeline(settings))
    process_batch([tmp_path / "inbox"], Pipeline(settings))  # the second arrival of each is audited too

    everything = json.loads(run_cli("audit", "--json", env=env).stdout)
    patients = sorted({e["patient_id"] for e in everything if e["patient_id"]})
    assert len(patients) == 2
    assert {e["actor"] for e in everything} == {getpass.getuser()}
    one = json.loads(run_cli("audit", "--patient", patients[0], "--json", env=env).stdout)
    assert {e["patient_id"] for e in one} == {patients[0]}
    assert [(e["action"], e["object_type"]) for e in one] == [
        ("create", "patient"), ("update", "patient"), ("create", "document"), ("create", "letter"),
        ("duplicate", "document")]  # the letter: a new patient's welcome letter, queued by its event
    times = [e["at"] for e in everything]
    assert times == sorted(times)

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert json.loads(run_cli("audit", "--since", tomorrow, "--json", env=env).stdout) == []
    assert len(json.loads(run_cli("audit", "--since", "2000-01-01", "--json", env=env).stdout)) == len(everything)
    bad = run_cli("audit", "--since", "last tuesday", env=env)
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr
    table = run_cli("audit", "--patient", patients[0], env=env)
    assert table.returncode == 0 and "5 events" in table.stdout

    only = json.loads(run_cli("audit", "--action", "duplicate", "--json", env=env).stdout)
    assert len(only) == 2 and all(e["action"] == "duplicate" for e in only)


def test_actor_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("FRONTDESK_ACTOR", "dr-house")
    with db.begin() as s:
        audit.record(s, "read", "patient", "pat-1", patient_id="pat-1")
    monkeypatch.delenv("FRONTDESK_ACTOR")
    with db.begin() as s:
        audit.record(s, "read", "patient", "pat-1", patient_id="pat-1")
        assert [e.actor for e in audit.events(s, patient_id="pat-1")] == ["dr-house", getpass.getuser()]


def test_audit_text_refuses_what_looks_like_patient_data(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    with db.begin() as s:
        for detail in ("born 1980-02-29", "dob 2/29/1980", "member 123456789"):
            with pytest.raises(ValueError):
                audit.record(s, "update", "patient", "pat-1", detail=detail)
        with pytest.raises(ValueError):
            audit.record(s, "peek", "patient", "pat-1")
        audit.record(s, "update", "patient", "pat-1", detail="3 fields from doc-0123456789abcdef")

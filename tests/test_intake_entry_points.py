"""Review behaves the same on every way into Frontdesk (frontdesk.intake.run_intake): a scanned form with
a value read in doubt and no member ID is held for a person -- no missing-insurance letter is written or
queued for the mail, not even by a later run's recovery -- and once a person corrects the doubted value
in the review (the console's save), the form is filed and its letter is queued for the next mail run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from frontdesk import audit
from frontdesk.intake import process_batch
from frontdesk.letters.mail import pending_pieces
from frontdesk.pipeline import Pipeline
from frontdesk.review_queue import Decision, decide
from frontdesk.settings import load_settings
from tests.conftest import FRONTDESK
from tests.fixtures import scans

#: Every value OCR reads is below this, so the form surely has a doubted value (a public setting).
DOUBT = "0.999"


def _via_core(inbox: Path, env: dict[str, str]) -> None:
    process_batch([inbox], Pipeline(load_settings()))


def _via_cli(*args: str, workers: int = 2) -> Any:
    def run(inbox: Path, env: dict[str, str]) -> None:
        argv = [FRONTDESK, *(a.replace("INBOX", str(inbox)) for a in args)]
        proc = subprocess.run(argv, env={**env, "FRONTDESK_WATCH__WORKERS": str(workers)}, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return run


ENTRY_POINTS = {
    "core run (no Prefect)": _via_core,
    "frontdesk process (intake flow)": _via_cli("process", "INBOX", "--json"),
    "frontdesk process on a Dask cluster": _via_cli("process", "INBOX", "--json", "--task-runner", "dask"),
    "watcher without Prefect, one reader": _via_cli("watch", "INBOX", "--once", "--dispatch", "local", workers=1),
    "watcher without Prefect, reading processes": _via_cli("watch", "INBOX", "--once", "--dispatch", "local"),
    "watcher with the intake flow and reading processes": _via_cli("watch", "INBOX", "--once", "--dispatch", "inline"),
}


@pytest.mark.integration
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_doubted_form_waits_for_a_person_then_its_letter_is_queued(
        entry: str, tmp_path: Path, fd_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    if "Dask" in entry:
        pytest.importorskip("prefect_dask")
    env = {**fd_env, "FRONTDESK_EXTRACTION__LOW_CONFIDENCE_THRESHOLD": DOUBT,
           "FRONTDESK_WATCH__STABLE_SECONDS": "0.2", "PREFECT_HOME": str(tmp_path / "prefect")}
    for k, v in env.items():
        if k.startswith("FRONTDESK_"):
            monkeypatch.setenv(k, v)
    [case] = scans.generate_scans(tmp_path / "made", 1, seed=57, tiers=("scan300",), scenarios=("member_id_blank",))
    inbox = Path(env["FRONTDESK_INBOX"])
    inbox.mkdir()
    shutil.copy(case.path, inbox / "form.pdf")

    ENTRY_POINTS[entry](inbox, env)

    settings = load_settings()
    pipeline = Pipeline(settings)
    with pipeline.db.begin() as s:
        from frontdesk.db.models import Document

        [doc] = [d for d in s.query(Document).all() if d.parent_id is None]
        assert doc.outcome == "needs_review"
        assert pending_pieces(s, settings, "letters") == []  # nothing queued for the mail
    assert list(Path(env["FRONTDESK_STORAGE__ROOT"]).rglob("letters/*.pdf")) == []

    pipeline.recover(force=True)  # a later run's recovery: it must not write the held letter either
    pipeline.send_letters([])
    assert list(Path(env["FRONTDESK_STORAGE__ROOT"]).rglob("letters/*.pdf")) == []

    with pipeline.db.begin() as s:
        from frontdesk import records

        result = records.extraction_result(s, doc.id)
    assert result is not None
    doubted = sorted({f.field for f in result.flags if f.code == "low_confidence" and f.field})
    assert doubted, "the form was meant to carry a value read in doubt"
    first = doubted[0]
    decisions = {k: Decision("accept") for k in doubted}
    decisions[first] = Decision("correct", str(case.truth[first]))
    with audit.acting_as("Dana Reviewer"):
        outcome = decide(pipeline, doc.id, decisions)

    assert len(outcome.letters_written) == 1
    with pipeline.db.begin() as s:
        queued = sorted(p.kind for p in pending_pieces(s, settings, "letters"))
    assert queued == ["missing_insurance", "welcome"]  # both wait for the next mail run (a new patient)
    filed = json.loads(pipeline.storage.get_bytes(next(
        k for k in _keys(pipeline, doc.id) if k.endswith("extraction.json"))))
    assert filed["review"]["reviewed_by"] == "Dana Reviewer"  # the corrected reading is filed, by name
    assert filed["extraction"]["fields"][first]["value"] == case.truth[first]
    assert not [f for f in filed["extraction"]["flags"] if f["code"] == "low_confidence"]


def _keys(pipeline: Pipeline, document_id: str) -> list[str]:
    from frontdesk import records

    with pipeline.db.begin() as s:
        rows, _ = records.document_objects(s, document_id)
        return [r.key for r in rows]

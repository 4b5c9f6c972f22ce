"""`frontdesk process`: every input filed with its record; letters for exactly the forms missing insurance."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from frontdesk.intake import process_batch
from frontdesk.pipeline import Pipeline
from tests.conftest import run_cli
from tests.fixtures.generator import generate


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.integration
def test_twenty_mixed_forms_are_filed_and_only_missing_insurance_gets_a_letter(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    cases = generate(inbox, 20, seed=11)
    (inbox / "truth.json").unlink()
    by_name = {c.path.name: c for c in cases}
    outcomes = process_batch([inbox], Pipeline(settings))
    assert len(outcomes) == 20
    storage = settings.storage.root
    for o in outcomes:
        case = by_name[Path(o.input).name]
        assert o.status in ("filed", "needs_review")
        assert o.record_id and o.record_id.startswith("doc-")
        keys = {s.key for s in o.stored}
        assert any(k.endswith("/original.pdf") for k in keys) and any(k.endswith("/extraction.json") for k in keys)
        for s in o.stored:
            assert (storage / s.key).is_file()
        record = json.loads((storage / next(k for k in keys if k.endswith("extraction.json"))).read_text())
        assert record["extraction"]["fields"]["patient.last_name"]["value"] == case.truth["patient.last_name"]
        wants_letter = ("insurance.missing_info", None) in case.expected_flags
        assert len(o.letters) == (1 if wants_letter else 0), case.scenario
        assert (o.status == "filed") == (not case.expected_flags)
        if wants_letter:
            text = " ".join(pdf_text(storage / o.letters[0].key).split())
            t = case.truth
            assert f"{t['patient.first_name']} {t['patient.last_name']}" in text
            assert t["patient.address.street"] in text
            assert f"{t['patient.address.city']}, {t['patient.address.state']} {t['patient.address.zip']}" in text
            missing = {"member_id_blank": "Member ID", "payer_blank": "Insurance company"}[case.scenario]
            assert missing in text
    assert sum(len(o.letters) for o in outcomes) == sum(
        1 for c in cases if ("insurance.missing_info", None) in c.expected_flags) > 0


def test_bad_input_is_filed_as_failed_with_a_reason_and_the_batch_goes_on(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.test_bad_input import make_bad_inputs, make_unknown_pdf

    inbox = tmp_path / "inbox"
    bad = make_bad_inputs(inbox)
    make_unknown_pdf(inbox / "scan-0005.pdf")
    good = generate(inbox, 2, seed=3, scenarios=("complete",))
    (inbox / "truth.json").unlink()
    outcomes = {Path(o.input).name: o for o in process_batch([inbox], Pipeline(settings))}
    assert len(outcomes) == 7
    for path in bad.values():
        o = outcomes[path.name]
        assert o.status == "failed" and o.error and path.name in o.error
        reason = next(s for s in o.stored if s.key.endswith("reason.txt"))
        assert reason.key.startswith("failed/")
        assert (settings.storage.root / reason.key).read_text().strip()
        original = next(s for s in o.stored if "/original" in s.key)
        assert (settings.storage.root / original.key).read_bytes() == path.read_bytes()
        assert path.exists()  # nothing is lost: the original stays until it is archived
    assert outcomes["scan-0005.pdf"].status == "needs_review"
    assert outcomes["scan-0005.pdf"].document_type == "unknown"
    for c in good:
        assert outcomes[c.path.name].status == "filed"


def test_storage_keys_hold_no_patient_data(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    cases = generate(inbox, 6, seed=21, scenarios=("complete", "self_pay"))
    (inbox / "truth.json").unlink()
    outcomes = process_batch([inbox], Pipeline(settings))
    keys = " ".join(s.key for o in outcomes for s in o.stored).lower()
    for c in cases:
        for k in ("patient.last_name", "patient.first_name", "patient.date_of_birth", "insurance.primary.member_id"):
            v = c.truth[k]
            if isinstance(v, str):
                assert v.lower() not in keys


@pytest.mark.integration
def test_process_cli_runs_the_prefect_flow_and_prints_json(tmp_path: Path, fd_env: dict[str, str]) -> None:
    inbox = tmp_path / "inbox"
    generate(inbox, 3, seed=8, scenarios=("complete", "member_id_blank", "self_pay"))
    (inbox / "truth.json").unlink()
    proc = run_cli("process", str(inbox), "--json", env=fd_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert [o["status"] for o in out].count("needs_review") == 1
    assert sum(len(o["letters"]) for o in out) == 1
    for o in out:
        assert set(o) >= {"input", "status", "record_id", "stored", "letters", "flags"}
    summary = run_cli("process", str(inbox), env=fd_env, timeout=600)
    assert summary.returncode == 0
    assert "3 documents" in summary.stdout

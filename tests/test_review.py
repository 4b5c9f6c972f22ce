"""Human review: a needs_review document pauses for input on a real Prefect server; resuming with the
person's values re-runs validation and letters with them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdesk.models import ExtractionResult, Flag
from tests.fixtures.generator import generate
from tests.prefect_harness import PrefectServer, paused_run_id, shared_server, stop_shared, wait_paused

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = shared_server(tmp_path_factory.mktemp("prefect-home"))
    yield server
    stop_shared()


def test_uncertain_fields_and_corrections_without_a_server(settings) -> None:  # type: ignore[no-untyped-def]
    """The form asks for what is flagged; a correction clears its flag and the missing-insurance rule."""
    from flows.review import apply_review, field_name, review_model, uncertain_fields
    from frontdesk.fields import load_vocabulary
    from frontdesk.models import FieldResult

    vocab = load_vocabulary(settings.fields_file)
    rule = vocab.missing_insurance
    member = "insurance.primary.member_id"
    result = ExtractionResult(
        document_type="intake_form", form="x", method="acroform", pages=2,
        fields={member: FieldResult(value=None), "insurance.primary.payer_name": FieldResult(value="Aetna", raw="Aetna")},
        flags=[Flag(code="missing", severity="error", field=member, message="Member ID is missing"),
               Flag(code=rule.code, severity="error", field=None, message="insurance incomplete"),
               Flag(code="page.missing", severity="warning", field=None, message="page 3 is missing")])
    keys = uncertain_fields(result, vocab)
    assert member in keys
    model = review_model(keys, result, vocab)
    assert field_name(member) in model.model_fields
    assert model.model_fields[field_name("insurance.primary.payer_name")].default == "Aetna"
    fixed, changed = apply_review(result, {field_name(member): "abc-123 456"}, vocab, 0.8)
    assert fixed.value(member) == "ABC123456" and member in changed
    codes = {f.code for f in fixed.flags}
    assert rule.code not in codes and "page.missing" in codes  # kept: a person cannot fix a lost page
    assert not any(f.field == member for f in fixed.flags)


def _needs_review_document(tmp_path: Path, settings, seed: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    from frontdesk.pipeline import Pipeline

    case = generate(tmp_path / f"in{seed}", 1, seed=seed, kinds=("digital",), scenarios=("member_id_blank",))[0]
    work = Pipeline(settings).intake(case.path)
    assert work.status == "needs_review" and work.document_id
    key = next(s.key for s in work.stored if s.key.endswith("/extraction.json"))
    return work.document_id, key


@pytest.mark.integration
def test_review_pauses_for_input_and_resumes_with_corrected_values(tmp_path: Path, settings, fd_env,  # type: ignore[no-untyped-def]
                                                                   prefect_server: PrefectServer) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.review import field_name

    storage = settings.storage.root
    fixed_doc, fixed_key = _needs_review_document(tmp_path, settings, seed=31)
    kept_doc, kept_key = _needs_review_document(tmp_path, settings, seed=32)
    env = prefect_server.env(fd_env)
    env["PYTHONPATH"] = str(ROOT)
    procs = {}
    for doc, key in ((fixed_doc, fixed_key), (kept_doc, kept_key)):
        code = ("import sys; from flows.review import review_flow; "
                f"review_flow.with_options(flow_run_name='review-{doc}')(sys.argv[1])")
        procs[doc] = subprocess.Popen([sys.executable, "-c", code, key], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        member = field_name("insurance.primary.member_id")
        runs = {doc: wait_paused(prefect_server, f"review-{doc}", p) for doc, p in procs.items()}
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
            with get_client(sync_client=True) as client:
                schema = json.loads(client.read_flow_run_input(UUID(runs[fixed_doc]), "paused-review-schema"))
            assert member in schema["properties"]  # the form the UI shows asks for the member ID
            resume_flow_run(UUID(runs[fixed_doc]), run_input={member: "XQ-4471 0092"})
            resume_flow_run(UUID(runs[kept_doc]), run_input={})  # the person confirms: it really is blank
        for p in procs.values():
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as client:
            for run_id in runs.values():
                assert client.read_flow_run(UUID(run_id)).state.is_completed()  # type: ignore[union-attr]
                # The answers are patient data: gone from the server once read.
                assert client.filter_flow_run_input(UUID(run_id), key_prefix="paused-review", limit=10,
                                                    exclude_keys=set()) == []
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()

    fixed = json.loads((storage / fixed_key).read_text())
    assert fixed["extraction"]["fields"]["insurance.primary.member_id"]["value"] == "XQ44710092"
    assert fixed["review"]["fields_changed"] == ["insurance.primary.member_id"]
    assert fixed["extraction_before_review"]["fields"]["insurance.primary.member_id"]["value"] is None
    assert not any(f["code"] == "insurance.missing_info" for f in fixed["extraction"]["flags"])
    assert not list((storage / fixed_key).parent.glob("letters/*"))  # corrected: no letter needed

    kept = json.loads((storage / kept_key).read_text())
    assert kept["review"]["fields_changed"] == []
    assert any(f["code"] == "insurance.missing_info" for f in kept["extraction"]["flags"])
    assert len(list((storage / kept_key).parent.glob("letters/*.pdf"))) == 1  # confirmed blank: the letter goes


def _storage_letters(storage: Path) -> list[Path]:
    return sorted(storage.rglob("letters/*.pdf"))


@pytest.mark.integration
def test_intake_holds_the_letter_of_a_document_in_review_until_a_person_confirms(  # type: ignore[no-untyped-def]
        tmp_path: Path, fd_env, prefect_server: PrefectServer) -> None:
    """`frontdesk process` files a document with a blank member ID: it goes to review, and no
    missing-insurance letter is written before a person has looked; once the person confirms the ID really
    is blank, the review writes the letter."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.conftest import FRONTDESK

    storage = Path(fd_env["FRONTDESK_STORAGE__ROOT"])
    env = prefect_server.env(fd_env)
    env.update(PYTHONPATH=str(ROOT), PREFECT_RUNNER_POLL_FREQUENCY="2")
    serve = subprocess.Popen([FRONTDESK, "serve", "--no-watch"], env=env, cwd=ROOT, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # hang guards for a loaded machine, not speed checks
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as client:
            while True:
                assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
                try:
                    client.read_deployment_by_name("review/review")
                    break
                except Exception:
                    assert time.monotonic() < deadline, "the review deployment was never served"
                    time.sleep(1)

        case = generate(tmp_path / "in", 1, seed=33, kinds=("digital",), scenarios=("member_id_blank",))[0]
        proc = subprocess.run([FRONTDESK, "process", str(case.path), "--json"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        [outcome] = json.loads(proc.stdout)
        assert outcome["status"] == "needs_review" and outcome["letters"] == []
        assert _storage_letters(storage) == []  # no letter before a person has looked

        run_name = f"review-{outcome['record_id']}"
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as client:
            while True:
                paused = paused_run_id(client, run_name)
                if paused is not None:
                    break
                assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
                assert time.monotonic() < deadline + 240, "the review never waited for a person"
                time.sleep(1)
            run_id = UUID(paused)
            assert _storage_letters(storage) == []  # still none while the review waits
            resume_flow_run(run_id, run_input={})  # the person confirms: the member ID really is blank
            while True:
                state = client.read_flow_run(UUID(str(run_id))).state
                if state is not None and state.is_final():
                    break
                assert time.monotonic() < deadline + 480, "the resumed review never finished"
                time.sleep(1)
            assert state.is_completed(), state
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()

    [letter] = _storage_letters(storage)  # after the review: exactly one letter, beside the reviewed reading
    reading = json.loads((letter.parent.parent / "extraction.json").read_text())
    assert reading["review"]["fields_changed"] == []
    assert any(f["code"] == "insurance.missing_info" for f in reading["extraction"]["flags"])

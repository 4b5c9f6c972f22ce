"""A review held in a Prefect flow run (flows/review.py) answered from the staff console: the console files
the person's decision under their name, and the waiting run is resumed and finishes without filing the
document a second time. A real ``prefect server`` (tests/prefect_harness.py), the review flow in its own
process, the console's HTTP app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.console_helpers import add_user, console_settings, review_form, sign_in
from tests.prefect_harness import PrefectServer, shared_server, stop_shared, wait_paused

ROOT = Path(__file__).resolve().parent.parent
MEMBER = "insurance.primary.member_id"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = shared_server(tmp_path_factory.mktemp("prefect-home"))
    yield server
    stop_shared()


@pytest.mark.integration
def test_console_answers_a_review_held_in_a_flow_run(tmp_path: Path, prefect_server: PrefectServer) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from frontdesk.console import create_app
    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent, Document, Letter
    from frontdesk.pipeline import Pipeline
    from tests.fixtures.generator import generate

    settings = console_settings(tmp_path, secure_cookies=False)
    settings.prefect.api_url = prefect_server.url
    case = generate(tmp_path / "in", 1, seed=33, kinds=("digital",), scenarios=("member_id_blank",))[0]
    work = Pipeline(settings).intake(case.path)
    assert work.status == "needs_review" and work.document_id
    doc = work.document_id
    key = next(s.key for s in work.stored if s.key.endswith("/extraction.json"))
    add_user(settings, "ana")

    env = prefect_server.env(dict(os.environ, FRONTDESK_STORAGE__ROOT=str(settings.storage.root),
                                  FRONTDESK_STORAGE__SPOOL=str(settings.storage.spool),
                                  FRONTDESK_DATABASE_URL=settings.database_url,
                                  FRONTDESK_INBOX=str(tmp_path / "inbox"), FRONTDESK_ACTOR="frontdesk-worker"))
    env["PYTHONPATH"] = str(ROOT)
    code = ("import json, sys; from flows.review import review_flow; "
            f"print(json.dumps(review_flow.with_options(flow_run_name='review-{doc}')(sys.argv[1])))")
    proc = subprocess.Popen([sys.executable, "-c", code, key], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        run_id = wait_paused(prefect_server, f"review-{doc}", proc)

        client = TestClient(create_app(settings))
        sign_in(client, "ana")
        page = client.get(f"/review/{doc}")
        assert page.status_code == 200
        saved = client.post(f"/review/{doc}", data=review_form(page.text, **{MEMBER: "ZK 3317 0042"}),
                            follow_redirects=False)
        assert saved.status_code == 303

        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert answer["answered_in_console"] is True and answer["status"] == "filed"
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}), get_client(sync_client=True) as pc:
        assert pc.read_flow_run(UUID(run_id)).state.is_completed()  # type: ignore[union-attr]
        assert pc.filter_flow_run_input(UUID(run_id), key_prefix="paused-review", limit=10, exclude_keys=set()) == []

    record = json.loads((settings.storage.root / key).read_text())
    assert record["review"]["reviewed_by"] == "ana"
    assert record["extraction"]["fields"][MEMBER]["value"] == "ZK33170042"
    with open_database(settings).begin() as s:
        assert s.get(Document, doc).outcome == "filed"
        events = s.scalars(select(AuditEvent).where(AuditEvent.object_id == doc, AuditEvent.action == "update")).all()
        assert {e.actor for e in events} == {"ana"}, [(e.actor, e.detail) for e in events]
        assert any(e.detail == "held review run resumed" for e in events)
        assert any((e.detail or "").startswith("review:") for e in events)
        # Filed once: one reading from intake, one from the review; no missing-insurance letter (the member ID
        # is known now).
        from frontdesk.db.models import Extraction

        assert len(s.scalars(select(Extraction).where(Extraction.document_id == doc)).all()) == 2
        # (a new patient's welcome letter may follow the filing; never a missing-insurance letter)
        kinds = [x.kind for x in s.scalars(select(Letter).where(Letter.document_id == doc))]
        assert "missing_insurance" not in kinds and len(kinds) == len(set(kinds))


def test_console_starts_and_saves_reviews_without_any_prefect_server(tmp_path: Path) -> None:
    """No Prefect API configured and none on the local port: the console never imports Prefect."""
    code = ("import sys; from tests.console_helpers import console_settings; "
            "from frontdesk.console import create_app; from frontdesk.console.held import review_api; "
            "s = console_settings(__import__('pathlib').Path(sys.argv[1])); s.prefect.local_server_port = 9; "
            "create_app(s); assert review_api(s) is None; "
            "assert not any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules), 'prefect imported'")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]

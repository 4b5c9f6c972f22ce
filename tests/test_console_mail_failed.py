"""The console's Mail page, failed-file retry and card/form conflicts over HTTP (FastAPI's test client):
no patient data before sign-in, CSRF refused, the same core functions as the CLI (``frontdesk mail``,
``frontdesk documents retry``, ``frontdesk flags conflict``) and audit events with the person's name.
The same pages in a real browser: tests/test_console_browser_mail.py."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.console_helpers import add_user, console_settings, csrf_of, seed_scanned_review, sign_in

P = "insurance.primary."
MEMBER = P + "member_id"


def _client(settings: Any) -> TestClient:
    from frontdesk.console import create_app

    return TestClient(create_app(settings))


def _words(html: str) -> str:
    """The page as a person reads it: tags gone, spaces collapsed."""
    import html as html_lib
    import re

    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _settings(tmp: Path) -> Any:
    settings = console_settings(tmp)
    settings.mail.output_dir = tmp / "mail-out"
    return settings


def _events(settings: Any, **where: Any) -> list[Any]:
    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent

    with open_database(settings).begin() as s:
        q = select(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(q.order_by(AuditEvent.id)))


@pytest.fixture
def mail_world(tmp_path: Path) -> tuple[Any, Any]:
    settings = _settings(tmp_path)
    seed = seed_scanned_review(settings, tmp_path)  # its missing-insurance letter waits for the mail
    add_user(settings, "ana")
    add_user(settings, "ivan", "admin")
    return settings, seed


def test_mail_pages_show_nothing_before_sign_in_and_refuse_changes_without_csrf(mail_world: tuple[Any, Any]) -> None:
    settings, seed = mail_world
    from frontdesk.db import open_database
    from frontdesk.db.models import Letter, MailBatch, Patient

    with open_database(settings).begin() as s:
        p = s.get(Patient, seed.patient_id)
        secrets = [p.last_name, p.first_name]
    client = _client(settings)
    for method, path in (("GET", "/mail"), ("POST", "/mail/preview"), ("POST", "/mail/build"),
                         ("GET", "/mail/batches/mb-000000000000"), ("GET", "/mail/batches/mb-000000000000/pdf"),
                         ("POST", "/failed/" + seed.review_doc + "/retry"), ("POST", "/conflicts/1")):
        r = client.request(method, path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", (method, path)
        assert not any(x in r.text for x in secrets)
    home = sign_in(client, "ana")
    page = client.get("/mail")
    assert page.status_code == 200 and p.last_name in page.text and "Missing-insurance letter" in page.text
    assert client.post("/mail/build", data={"kind": "all"}).status_code == 403
    assert client.post("/mail/build", data={"kind": "all", "csrf": "forged"}).status_code == 403
    with open_database(settings).begin() as s:
        assert s.scalars(select(MailBatch)).first() is None
        assert s.get(Letter, seed.letter_id).status == "pending"
    assert csrf_of(home.text)


def test_build_print_mark_mailed_from_the_console_is_the_cli_batch_audited_by_name(mail_world: tuple[Any, Any]) -> None:
    settings, seed = mail_world
    from frontdesk.db import open_database
    from frontdesk.db.models import Letter, MailBatch
    from frontdesk.letters.mail import list_batches

    client = _client(settings)
    home = sign_in(client, "ana")
    csrf = csrf_of(home.text)
    preview = client.post("/mail/preview", data={"csrf": csrf, "kind": "all"})
    assert preview.status_code == 200 and "would hold 1 piece(s)" in _words(preview.text)
    assert "Nothing was recorded" in preview.text
    with open_database(settings).begin() as s:
        assert s.scalars(select(MailBatch)).first() is None  # a preview records nothing
    built = client.post("/mail/build", data={"csrf": csrf, "kind": "all"}, follow_redirects=False)
    assert built.status_code == 303
    batch_id = built.headers["location"].rsplit("/", 1)[1]
    # The batch the console built is the one `frontdesk mail --list` shows: one implementation.
    batch, = list_batches(open_database(settings))
    assert (batch.batch_id, batch.status, batch.items) == (batch_id, "submitted", 1)
    assert (settings.mail.output_dir / f"{batch_id}.pdf").exists()  # the print copy, as the CLI writes it
    page = client.get(f"/mail/batches/{batch_id}")
    assert "Ready to print and mail" in page.text and f"/patients/{seed.patient_id}" in page.text
    pdf = client.get(f"/mail/batches/{batch_id}/pdf")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    manifest = client.get(f"/mail/batches/{batch_id}/manifest")
    assert manifest.status_code == 200 and seed.letter_id in manifest.text
    # Building again mails nothing twice.
    again = client.post("/mail/build", data={"csrf": csrf, "kind": "all"})
    assert "There is nothing waiting to be mailed" in again.text
    mailed = client.post(f"/mail/batches/{batch_id}/mailed", data={"csrf": csrf})
    assert mailed.status_code == 200 and "Mailed" in mailed.text
    with open_database(settings).begin() as s:
        assert s.get(Letter, seed.letter_id).status == "mailed"
        assert s.get(MailBatch, batch_id).status == "mailed"
    # A mailed batch cannot be voided; the reason is said in words.
    refused = client.post(f"/mail/batches/{batch_id}/void", data={"csrf": csrf, "reason": "printer jammed"})
    assert refused.status_code == 409 and "only a batch not yet mailed can be voided" in refused.text
    done = {(e.action, e.detail) for e in _events(settings, actor="ana", object_type="mail_batch")}
    assert ("create", "1 pieces; all") in done and ("update", "mailed; 1 pieces") in done
    assert ("export", "pdf downloaded from the console") in done and ("export", "manifest downloaded from the console") in done
    assert any(a == "read" and (d or "").startswith("mail page") for a, d in done) or _events(
        settings, actor="ana", action="read", object_type="mail_batch")
    letter_events = {e.detail for e in _events(settings, actor="ana", object_type="letter", object_id=seed.letter_id)}
    assert f"queued in {batch_id}" in letter_events


def test_void_and_reissue_from_the_console(mail_world: tuple[Any, Any]) -> None:
    settings, seed = mail_world
    from frontdesk.db import open_database
    from frontdesk.db.letters_models import MailBatchDetail
    from frontdesk.db.models import Letter, MailBatch

    client = _client(settings)
    csrf = csrf_of(sign_in(client, "ana").text)
    first = client.post("/mail/build", data={"csrf": csrf}, follow_redirects=False).headers["location"].rsplit("/", 1)[1]
    assert client.post(f"/mail/batches/{first}/void", data={"csrf": csrf, "reason": ""}).status_code == 409
    r = client.post(f"/mail/batches/{first}/void", data={"csrf": csrf, "reason": "pages lost", "reissue": "yes"},
                    follow_redirects=False)
    second = r.headers["location"].rsplit("/", 1)[1]
    assert second != first
    with open_database(settings).begin() as s:
        assert s.get(MailBatch, first).status == "void"
        assert s.get(MailBatchDetail, second).reissue_of == first
        assert s.get(Letter, seed.letter_id).status == "queued"
    assert "Re-issued as" in client.get(f"/mail/batches/{first}").text
    assert ("update", "void; 1 pieces back to pending") in {
        (e.action, e.detail) for e in _events(settings, actor="ana", object_id=first)}


def test_a_failed_file_is_read_again_once_and_filed(tmp_path: Path) -> None:
    """A file stopped by a limit is filed once the limit is raised: one retry reads and files it (its
    patient, its missing-insurance letter); a second retry and the same file handed in again do nothing."""
    from frontdesk.db import open_database
    from frontdesk.db.models import Document, Extraction, Letter, Patient
    from frontdesk.pipeline import Pipeline
    from tests.fixtures.generator import generate

    settings = _settings(tmp_path)
    case = generate(tmp_path / "in", 1, seed=41, kinds=("digital",), scenarios=("member_id_blank",))[0]
    # Its reading stopped by the time limit (a file refused for its size is not stored: nothing to read again).
    settings.extraction.read_limit_seconds = 0.001
    failed = Pipeline(settings).intake(case.path)
    assert failed.status == "failed" and failed.document_id
    doc = failed.document_id
    settings.extraction.read_limit_seconds = 300.0  # the IT person raised the limit
    add_user(settings, "ana")
    client = _client(settings)
    home = sign_in(client, "ana")
    listing = client.get("/failed")
    assert doc in listing.text and "Read again" in listing.text
    assert client.post(f"/failed/{doc}/retry", data={}).status_code == 403  # no CSRF token
    r = client.post(f"/failed/{doc}/retry", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/review/{doc}"  # member ID blank: needs review
    again = client.post(f"/failed/{doc}/retry", data={"csrf": csrf_of(home.text)})
    assert again.status_code == 409 and "has not failed" in again.text
    assert Pipeline(settings).intake(case.path).status == "duplicate"  # handed in again: not read twice
    with open_database(settings).begin() as s:
        d = s.get(Document, doc)
        assert (d.outcome, d.state, d.error) == ("needs_review", "complete", None)
        assert len(s.scalars(select(Extraction).where(Extraction.document_id == doc)).all()) == 1
        assert len(s.scalars(select(Patient)).all()) == 1
        # a new patient's welcome letter and the missing-insurance letter, once each
        assert sorted((x.kind, x.status) for x in s.scalars(select(Letter))) == [("missing_insurance", "pending"),
                                                                                 ("welcome", "pending")]
    details = [e.detail for e in _events(settings, actor="ana", object_id=doc)]
    assert "retry started" in details and any((x or "").startswith("new reading") for x in details)


def test_a_file_that_still_cannot_be_read_stays_failed_with_the_new_reason(tmp_path: Path) -> None:
    from frontdesk.db import open_database
    from frontdesk.db.models import Document
    from frontdesk.pipeline import Pipeline
    from tests.conftest import run_cli
    from tests.fixtures.generator import generate

    settings = _settings(tmp_path)
    case = generate(tmp_path / "in", 1, seed=42, kinds=("digital",), scenarios=("complete",))[0]
    settings.extraction.read_limit_seconds = 0.001
    doc = Pipeline(settings).intake(case.path).document_id
    assert doc
    env = {"FRONTDESK_STORAGE__ROOT": str(settings.storage.root), "FRONTDESK_STORAGE__SPOOL": str(settings.storage.spool),
           "FRONTDESK_DATABASE_URL": settings.database_url, "FRONTDESK_INBOX": str(tmp_path / "inbox"),
           "FRONTDESK_EXTRACTION__READ_LIMIT_SECONDS": "0.001", "FRONTDESK_ACTOR": "it-admin"}
    import os

    out = run_cli("documents", "retry", doc, env={**os.environ, **env})
    assert out.returncode == 2 and "still cannot be read" in out.stdout
    with open_database(settings).begin() as s:
        assert s.get(Document, doc).outcome == "failed"
    assert [e.detail for e in _events(settings, actor="it-admin", object_id=doc)] == ["retry started",
                                                                                    "retry failed again"]


@pytest.mark.integration
def test_card_and_form_disagree_the_person_picks_one_with_both_pictures(tmp_path: Path) -> None:
    from frontdesk.db import open_database
    from frontdesk.db.models import Document, FlagRow, Patient
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import cards as card_gen
    from tests.test_cards_process import holder_of, intake_case

    settings = _settings(tmp_path)
    case = intake_case(tmp_path / "forms", "complete")
    on_form = str(case.truth[MEMBER])
    payer = next(p for p in card_gen.PAYERS if p.canonical == case.truth[P + "payer_name"])
    r = random.Random(11)
    other = next(m for m in (payer.member_id(r) for _ in range(20)) if m != on_form)
    card = card_gen.card_for(holder_of(case, member_id=other), payer.canonical, tmp_path / "cards" / "card-0001",
                             seed=9)
    form_out, card_out = process_batch([case.path, card.path], Pipeline(settings))
    assert card_out.status == "needs_review"
    from frontdesk import actions
    from frontdesk.cards import CONFLICT_CODE

    assert actions.CARD_CONFLICT == CONFLICT_CODE  # one code, named twice only to keep spaCy out of page loads
    add_user(settings, "ana")
    client = _client(settings)
    sign_in(client, "ana")
    page = client.get(f"/review/{card_out.record_id}")
    assert "The insurance card and the patient's record disagree" in _words(page.text)
    assert on_form in page.text and other in page.text  # both values, side by side
    assert f"/crops/{card_out.record_id}/{MEMBER}" in page.text and f"/crops/{form_out.record_id}/{MEMBER}" in page.text
    for src in (card_out.record_id, form_out.record_id):
        img = client.get(f"/crops/{src}/{MEMBER}")
        assert img.status_code == 200 and img.content[:4] == b"\x89PNG"
    assert 'name="value:' + MEMBER not in page.text  # a choice, not a box to type into
    with open_database(settings).begin() as s:
        flag_id = s.scalars(select(FlagRow.id).where(FlagRow.document_id == card_out.record_id,
                                                     FlagRow.code == "card.conflict")).one()
    assert client.post(f"/conflicts/{flag_id}", data={"keep": "card"}).status_code == 403
    done = client.post(f"/conflicts/{flag_id}", data={"csrf": csrf_of(page.text), "keep": "card"},
                       follow_redirects=False)
    assert done.status_code == 303
    with open_database(settings).begin() as s:
        patient = s.scalars(select(Patient)).one()
        row = next(f for f in patient.fields if f.key == MEMBER)
        assert (row.value, row.source_document_id) == (other, card_out.record_id)
        flag = s.get(FlagRow, flag_id)
        assert (flag.status, flag.resolved_by) == ("resolved", "ana")
        assert s.get(Document, card_out.record_id).outcome == "filed"
    assert any((e.detail or "").startswith(f"card conflict on {MEMBER}: kept the card value")
               for e in _events(settings, actor="ana", action="update", object_type="patient"))
    again = client.post(f"/conflicts/{flag_id}", data={"csrf": csrf_of(page.text), "keep": "record"})
    assert again.status_code == 409 and "resolved already" in again.text


def test_a_long_backlog_is_listed_a_page_at_a_time_oldest_first(tmp_path: Path) -> None:
    """120 letters waiting: the Mail page lists 50 at a time with the total, the pages together list each
    piece once in the order the batch takes them, and a view is audited for the patients it showed only."""
    from datetime import UTC, date, datetime, timedelta

    from sqlalchemy import insert

    from frontdesk.db import open_database
    from frontdesk.db.models import Letter, Patient
    from frontdesk.letters import mail as core
    from frontdesk.records import match_key

    settings = _settings(tmp_path)
    add_user(settings, "ana")
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    db = open_database(settings)
    with db.begin() as s:
        s.execute(insert(Patient), [{"id": f"pat-{i:012x}", "last_name": f"Backlog{i:03d}", "first_name": "Pat",
                                     "date_of_birth": date(1980, 1, 1) + timedelta(days=i),
                                     "match_key": match_key("Pat", f"Backlog{i:03d}", date(1980, 1, 1) + timedelta(days=i))}
                                    for i in range(120)])
        # created out of id order: the page order is by age, as the batch takes them
        s.execute(insert(Letter), [{"id": f"let-{i:012x}", "kind": "welcome", "status": "pending",
                                    "patient_id": f"pat-{i:012x}", "created_at": start + timedelta(minutes=(i * 37) % 120)}
                                   for i in range(120)])
    with db.begin() as s:
        every = [p.piece_id for p in core.pending_pieces(s, settings, "all")]
    client = _client(settings)
    sign_in(client, "ana")
    shown: list[str] = []
    for page in (1, 2, 3):
        text = _words(client.get(f"/mail?page={page}").text)
        assert "Waiting for the next mail batch (120)" in text
        first = (page - 1) * 50 + 1
        assert f"Showing {first}–{min(page * 50, 120)} of 120" in text
        assert ("Next page" in text) == (page < 3) and ("Previous page" in text) == (page > 1)
        names = [w.rstrip(",") for w in text.split() if w.startswith("Backlog")]
        assert len(set(names)) == (50 if page < 3 else 20)
        shown += sorted(set(names), key=names.index)
    with db.begin() as s:
        order = {p.id: p.last_name for p in s.scalars(select(Patient))}
    assert shown == [order[f"pat-{pid.removeprefix('let-')}"] for pid in every]  # each once, batch order
    reads = {e.patient_id for e in _events(settings, action="read", object_type="patient")}
    assert len(reads) == 120  # three views, 120 patients, each audited by the view that showed it

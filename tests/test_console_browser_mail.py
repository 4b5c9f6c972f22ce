"""Mail, failed files and card/form conflicts in a real browser: Playwright for Python driving Debian's
Chromium (/usr/bin/chromium; no browser download) against ``frontdesk console`` started as a real server
process. Screenshots go to FRONTDESK_SCREENSHOTS (default var/screenshots/console), as in
tests/test_console_browser.py."""

from __future__ import annotations

import os
import random
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import FRONTDESK
from tests.console_helpers import PASSWORD, add_user, console_settings, seed_scanned_review
from tests.test_console_browser import ARGS, CHROMIUM, _free_port, _shot

P = "insurance.primary."
MEMBER = P + "member_id"

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def test_mail_failed_files_and_a_card_conflict_in_the_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent, Document, FlagRow, Letter, MailBatch, Patient
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import cards as card_gen
    from tests.fixtures.generator import generate
    from tests.test_cards_process import holder_of, intake_case

    settings = console_settings(tmp_path)
    seed = seed_scanned_review(settings, tmp_path)  # a missing-insurance letter waits for the mail
    # A file stopped by a time limit the practice has since raised.
    big = generate(tmp_path / "big", 1, seed=43, kinds=("digital",), scenarios=("complete",))[0]
    settings.extraction.read_limit_seconds = 0.001
    failed = Pipeline(settings).intake(big.path)
    assert failed.status == "failed" and failed.document_id
    settings.extraction.read_limit_seconds = 300.0
    # A form and an insurance card that disagree about the member ID.
    case = intake_case(tmp_path / "forms", "complete")
    payer = next(p for p in card_gen.PAYERS if p.canonical == case.truth[P + "payer_name"])
    r = random.Random(11)
    other = next(m for m in (payer.member_id(r) for _ in range(20)) if m != str(case.truth[MEMBER]))
    card = card_gen.card_for(holder_of(case, member_id=other), payer.canonical, tmp_path / "cards" / "card-0001",
                             seed=9)
    form_out, card_out = process_batch([case.path, card.path], Pipeline(settings))
    assert card_out.status == "needs_review" and card_out.record_id and form_out.record_id
    add_user(settings, "ana")

    port = _free_port()
    env = dict(os.environ, FRONTDESK_STORAGE__ROOT=str(settings.storage.root),
               FRONTDESK_STORAGE__SPOOL=str(settings.storage.spool), FRONTDESK_DATABASE_URL=settings.database_url,
               FRONTDESK_INBOX=str(tmp_path / "inbox"), FRONTDESK_CONSOLE__SECURE_COOKIES="false",
               FRONTDESK_MAIL__OUTPUT_DIR=str(tmp_path / "mail-out"))
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([FRONTDESK, "console", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a hang guard on a loaded machine, not a speed check
        while True:
            try:
                urllib.request.urlopen(url + "/login", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "console did not start"
                time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=url).new_page()
            csp: list[str] = []
            page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto("/mail")
            assert page.url.endswith("/login")
            page.get_by_label("User name").fill("ana")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/")

            # Mail: the letter waits; build the batch, open its PDF, mark it mailed.
            page.get_by_role("link", name="Mail", exact=True).click()
            page.wait_for_url("**/mail")
            rows = page.locator("table.mail-pending tbody tr")
            waiting = rows.count()  # the missing-insurance letter, and the new patient's welcome letter
            row = rows.filter(has_text="Missing-insurance letter")
            assert row.count() == 1 and row.get_by_text("Ready").is_visible()
            _shot(page, "mail")
            page.get_by_role("button", name="Preview the batch").click()
            page.wait_for_url("**/mail/preview")
            assert page.get_by_text("Nothing was recorded or printed.").is_visible()
            page.get_by_role("button", name="Build the batch").click()
            page.wait_for_url("**/mail/batches/mb-*")
            batch_id = page.url.rsplit("/", 1)[1]
            assert page.get_by_text("Ready to print and mail").first.is_visible()
            assert page.locator("table.mail-pieces tbody tr").count() == waiting
            pdf = page.request.get(f"/mail/batches/{batch_id}/pdf")
            assert pdf.ok and pdf.body()[:5] == b"%PDF-"
            _shot(page, "mail-batch")
            page.get_by_role("button", name="Mark as mailed").click()
            page.wait_for_url(f"**/mail/batches/{batch_id}")
            assert page.locator("h1").get_by_text("Mailed").is_visible()

            # Failed files: read the file again; it is filed and leaves the list.
            page.get_by_role("link", name="Failed files").click()
            page.wait_for_url("**/failed")
            assert page.locator("table.failed tbody tr").count() == 1
            _shot(page, "failed")
            page.get_by_role("button", name="Read again").click()
            page.wait_for_url("**/failed?retried=*")
            assert page.get_by_text("The file was read again and filed.").is_visible()
            assert page.get_by_text("No failed files.").is_visible()

            # The card and the form disagree: both values and both pictures, keep the card's.
            page.goto(f"/review/{card_out.record_id}")
            assert page.get_by_text("The insurance card and the patient's record disagree").is_visible()
            for src in (card_out.record_id, form_out.record_id):
                img = page.locator(f'img[src="/crops/{src}/{MEMBER}"]')
                img.scroll_into_view_if_needed()
                page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=img.element_handle())
            conflict = page.locator("fieldset.conflict")
            assert conflict.get_by_role("figure", name="On the insurance card").get_by_text(other, exact=True).is_visible()
            assert conflict.get_by_role("figure", name="On the intake form").get_by_text(
                str(case.truth[MEMBER]), exact=True).is_visible()
            _shot(page, "card-conflict")
            page.get_by_role("button", name="Keep the card's value").click()
            page.wait_for_url("**/review/**")
            browser.close()
        assert not csp, csp
    finally:
        server.terminate()
        server.wait(timeout=20)

    with open_database(settings).begin() as s:
        assert s.get(Letter, seed.letter_id).status == "mailed"
        assert s.get(MailBatch, batch_id).status == "mailed"
        assert s.get(Document, failed.document_id).outcome == "filed"
        patient = s.get(Patient, s.get(Document, card_out.record_id).patient_id)
        assert patient.value(MEMBER) == other
        assert s.scalars(select(FlagRow).where(FlagRow.document_id == card_out.record_id, FlagRow.status == "open",
                                               FlagRow.severity == "error")).all() == []
        assert s.get(Document, card_out.record_id).outcome == "filed"
        kinds = {(e.action, e.object_type) for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "ana"))}
        assert {("create", "mail_batch"), ("update", "mail_batch"), ("export", "mail_batch"), ("read", "mail_batch"),
                ("update", "document"), ("update", "patient"), ("update", "flag")} <= kinds

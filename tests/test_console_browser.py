"""The staff console in a real browser: Playwright for Python driving Debian's Chromium
(/usr/bin/chromium, installed by ./run setup; no browser is downloaded) against ``frontdesk console``
started as a real server process.

Screenshots of Today, a review page and a patient page are written to FRONTDESK_SCREENSHOTS (default
var/screenshots/console in the repository) for a person to look at; CI keeps that folder."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FRONTDESK, ROOT
from tests.console_helpers import PASSWORD, add_user, console_settings, seed_scanned_review

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MEMBER = "insurance.primary.member_id"
SHOTS = Path(os.environ.get("FRONTDESK_SCREENSHOTS", ROOT / "var" / "screenshots" / "console"))

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A scanned form waiting for review (its letter queued), an insurance card nobody matched with a
    patient born on the card's birthday on file, two records of one person, and the console serving them."""
    from frontdesk.db import open_database
    from frontdesk.db.models import Document, Patient, PatientField
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import cards as card_gen

    settings = console_settings(tmp_path)
    seed = seed_scanned_review(settings, tmp_path)
    add_user(settings, "ana")
    holder = card_gen.Holder(first="Dana", last="Kowalsky", dob=date(1979, 4, 23), member_id="W88412077",
                             group="884120")
    card = card_gen.card_for(holder, "Aetna", tmp_path / "cards" / "card-0001", seed=random.Random(3).randint(0, 999))
    card_work = Pipeline(settings).intake(card.path)
    assert card_work.status == "needs_review" and card_work.document_id
    db = open_database(settings)
    with db.begin() as s:
        flags = {f.code for f in s.get(Document, card_work.document_id).flags}
        assert "card.unmatched" in flags, flags
        # Her record was typed by hand at the desk with her name spelled "Kowalski": the card did not match.
        dana = Patient(match_key="kowalski|dana|1979-04-23", first_name="Dana", last_name="Kowalski",
                       date_of_birth=date(1979, 4, 23))
        lee1 = Patient(match_key="park|lee|1990-02-11", first_name="Lee", last_name="Park", date_of_birth=date(1990, 2, 11))
        lee2 = Patient(match_key="park|lee|1990-02-11", first_name="Lee", last_name="Park", date_of_birth=date(1990, 2, 11))
        lee2.fields.append(PatientField(key="patient.phone", value="(217) 555-0199"))
        s.add_all([dana, lee1, lee2])
        s.flush()
        ids = {"dana": dana.id, "lee1": lee1.id, "lee2": lee2.id}
    port = _free_port()
    env = dict(os.environ, FRONTDESK_STORAGE__ROOT=str(settings.storage.root),
               FRONTDESK_STORAGE__SPOOL=str(settings.storage.spool), FRONTDESK_DATABASE_URL=settings.database_url,
               FRONTDESK_INBOX=str(tmp_path / "inbox"), FRONTDESK_CONSOLE__SECURE_COOKIES="false")
    server = subprocess.Popen([FRONTDESK, "console", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a hang guard on a loaded machine, not a speed check
    while True:
        try:
            urllib.request.urlopen(url + "/login", timeout=5)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"console did not start: {server.stderr.read() if server.stderr else ''}") from None
            time.sleep(0.3)
    try:
        yield {"url": url, "settings": settings, "seed": seed, "card": card_work.document_id, **ids}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def page(world: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=world["url"])
        pg = context.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield pg
        context.close()
        browser.close()
        assert not [e for e in errors if "Content Security Policy" in e], errors


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_front_desk_day_in_the_browser(world: dict[str, Any], page: Any) -> None:
    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent, Letter, Patient

    seed = world["seed"]
    page.goto("/")
    assert page.url.endswith("/login")  # nothing without signing in
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    assert page.get_by_text("Signed in as").is_visible()
    assert page.get_by_text("need review").is_visible()
    _shot(page, "today")

    # The review queue opens the oldest document: the scanned form, with the crop of its member ID box.
    page.get_by_role("link", name="Start reviewing (oldest first)").click()
    page.wait_for_url(f"**/review/{seed.review_doc}")
    crop = page.locator(f'img[src="/crops/{seed.review_doc}/{MEMBER}"]')
    crop.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=crop.element_handle())
    _shot(page, "review")
    box = page.locator(f'input[name="value:{MEMBER}"]')
    box.fill("W77 310 5521")
    box.press("Enter")  # Enter saves and opens the next document
    page.wait_for_url("**/review/**saved=*")
    assert page.get_by_text("The previous document was saved").is_visible()

    # The next one is the card nobody matched: both sources side by side, one question.
    assert f"/review/{world['card']}" in page.url
    assert page.get_by_text("Which patient is this insurance card for?").is_visible()
    page.locator("form", has=page.locator(f'input[value="{world["dana"]}"]')).get_by_role(
        "button", name="File to this patient").click()
    page.wait_for_url(f"**/patients/{world['dana']}")
    assert page.get_by_text("Aetna").first.is_visible()

    # The scanned form's patient: member ID corrected, the missing-insurance letter withdrawn, audited.
    page.goto(f"/patients/{seed.patient_id}")
    assert page.get_by_text("W773105521").is_visible()
    assert page.get_by_text("Withdrawn").is_visible()
    page.get_by_text("Who saw or changed this record").click()
    assert page.locator("details table").get_by_text("ana").first.is_visible()
    _shot(page, "patient")

    # Two records of Lee Park: preview the merge, merge, and the phone number moves over.
    page.goto(f"/patients/{world['lee1']}")
    page.get_by_label("Other patient number (pat-…)").fill(world["lee2"])
    page.get_by_role("button", name="Preview the merge").click()
    assert page.get_by_text("Values filled in on the kept record: Phone").is_visible()
    _shot(page, "merge-preview")
    page.get_by_role("button", name="Merge these records").click()
    page.wait_for_url(f"**/patients/{world['lee1']}")
    assert page.get_by_text("(217) 555-0199").is_visible()
    assert page.get_by_role("button", name="Undo this merge").is_visible()

    with open_database(world["settings"]).begin() as s:
        assert s.get(Letter, seed.letter_id).status == "void"
        assert s.get(Patient, seed.patient_id).value(MEMBER) == "W773105521"
        assert s.get(Patient, world["dana"]).value(MEMBER) == "W88412077"
        events = s.scalars(select(AuditEvent).where(AuditEvent.actor == "ana")).all()
        kinds = {(e.action, e.object_type) for e in events}
        assert {("login", "user"), ("read", "document"), ("update", "document"), ("update", "letter"),
                ("update", "patient"), ("read", "patient")} <= kinds


def test_worklist_prints_in_the_browser(tmp_path: Path) -> None:
    """Print the worklist: the printed page has the rows and none of the console's navigation or forms."""
    from playwright.sync_api import sync_playwright

    from frontdesk.db import open_database
    from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate

    settings = console_settings(tmp_path)
    appointments = tmp_path / "appointments"
    appointments.mkdir()
    sc = generate(10, seed=11)
    db = open_database(settings)
    sc.load_into_db(db)
    sc.write_appointment_report(appointments / "appointments.csv")
    add_user(settings, "ana")
    port = _free_port()
    env = dict(os.environ, FRONTDESK_STORAGE__ROOT=str(settings.storage.root),
               FRONTDESK_STORAGE__SPOOL=str(settings.storage.spool), FRONTDESK_DATABASE_URL=settings.database_url,
               FRONTDESK_INBOX=str(tmp_path / "inbox"), FRONTDESK_CONSOLE__SECURE_COOKIES="false",
               FRONTDESK_CHECKS__TIMEZONE=TIMEZONE, FRONTDESK_CHECKS__APPOINTMENTS_DIR=str(appointments))
    server = subprocess.Popen([FRONTDESK, "console", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
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
            page.goto("/login")
            page.get_by_label("User name").fill("ana")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/")
            page.get_by_role("link", name="Worklist").click()
            page.get_by_label("Day").fill(VISIT_DATE.isoformat())
            page.get_by_role("button", name="Show").click()
            page.wait_for_url(f"**/worklist?date={VISIT_DATE.isoformat()}")
            rows = page.locator("table.worklist tbody tr")
            assert rows.count() == 10
            first_link = rows.locator("a[href^='/patients/']").first
            assert first_link.is_visible()
            _shot(page, "worklist")
            page.emulate_media(media="print")
            assert not page.locator("header.top").is_visible()  # printed without the navigation
            assert rows.first.is_visible()
            pdf = page.pdf(format="Letter")
            assert pdf[:5] == b"%PDF-" and len(pdf) > 5000
            SHOTS.mkdir(parents=True, exist_ok=True)
            (SHOTS / "worklist-print.pdf").write_bytes(pdf)
            first_link.click()
            page.wait_for_url("**/patients/pat-*")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)

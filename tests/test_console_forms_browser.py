"""The console's form page in a real browser (Playwright driving Debian's /usr/bin/chromium against
``frontdesk console`` as a server process): an administrator uploads the practice's fillable form whose
fields are called Text1..TextN, sees the boxes drawn and numbered on the page with a key for each, changes
one drop-down, accepts; a copy of the original form filled in a PDF viewer is then read through the new
template with the right values. A screenshot of the proposal goes to FRONTDESK_SCREENSHOTS."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from faker import Faker
from sqlalchemy import select

from tests.conftest import FRONTDESK
from tests.console_helpers import PASSWORD, add_user, console_settings
from tests.fixtures import byof
from tests.test_console_browser import ARGS, CHROMIUM, _free_port, _shot

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def test_admin_turns_a_text1_to_n_form_into_a_template_in_the_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent
    from frontdesk.extraction import Reader

    settings = console_settings(tmp_path)
    forms = tmp_path / "forms"
    settings.forms_dirs = [forms]
    add_user(settings, "ivan", "admin")
    original = byof.build("westlake", "textn", tmp_path / "upload" / "Westlake patient sheet.pdf")
    port = _free_port()
    env = dict(os.environ, FRONTDESK_STORAGE__ROOT=str(settings.storage.root),
               FRONTDESK_STORAGE__SPOOL=str(settings.storage.spool), FRONTDESK_DATABASE_URL=settings.database_url,
               FRONTDESK_INBOX=str(tmp_path / "inbox"), FRONTDESK_CONSOLE__SECURE_COOKIES="false",
               FRONTDESK_FORMS_DIRS=json.dumps([str(forms)]))
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
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto("/admin/forms")
            assert page.url.endswith("/login")  # a blank form has no patient data, but the page needs a login
            page.get_by_label("User name").fill("ivan")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/")
            page.get_by_role("link", name="Forms").click()
            page.wait_for_url("**/admin/forms")
            page.set_input_files("input[type=file][name=form]", str(original))
            page.get_by_role("button", name="Upload and propose keys").click()
            page.wait_for_url(re.compile(r".*/admin/forms/frm-[0-9a-f]{16}$"), timeout=180_000)

            # The page image with every box drawn and numbered; a row per box with its drop-down.
            image = page.locator("figure.formpage svg image")
            page.wait_for_function("() => { const i = new Image(); i.src = document.querySelector("
                                   "'figure.formpage svg image').getAttribute('href'); return i.decode()"
                                   ".then(() => i.naturalWidth > 500); }")
            assert image.count() == 1
            boxes = page.locator("figure.formpage svg a.box")
            rows = page.locator("table.proposal tbody tr")
            n = rows.count()
            assert n == boxes.count() == 25
            email_row = rows.filter(has=page.locator("code", has_text=re.compile(r"^Text6$")))
            assert email_row.locator("td").nth(2).inner_text().startswith("E-mail")
            email = email_row.locator("select")
            assert email.input_value() == "patient.email"  # proposed and preselected
            _shot(page, "form-proposal")
            # The practice does not want e-mail addresses read from this form: leave that box out.
            email.select_option("-")
            page.get_by_label("Template id").fill("westlake_sheet")
            page.get_by_role("button", name="Accept and write the template").click()
            page.wait_for_url("**/admin/templates/westlake_sheet?written=1", timeout=180_000)
            assert page.get_by_text("The template was written").is_visible()
            link = page.get_by_role("link", name="Open the check sheet (PDF)")
            assert link.is_visible()
            sheet = page.request.get(link.get_attribute("href") or "")
            assert sheet.ok and sheet.body()[:5] == b"%PDF-"
            _shot(page, "form-template")
            browser.close()
            assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        server.terminate()
        server.wait(timeout=20)

    # A copy of the ORIGINAL form (fields still Text1..N), filled in a PDF viewer, read through the template.
    rnd, fake = random.Random(9), Faker("en_US")
    fake.seed_instance(9)
    printed, truth = byof.record("westlake", rnd, fake, "complete")
    filled = byof.fill(original, "westlake", "textn", printed, tmp_path / "filled.pdf")
    result = Reader(settings).extract(filled)
    assert result.form == "westlake_sheet" and result.method == "acroform"
    assert truth["patient.email"] and result.value("patient.email") is None  # the box left out is not read
    wrong = {k: (result.value(k), v) for k, v in truth.items() if k != "patient.email"
             and (bool(result.value(k)) != v if isinstance(v, bool) else result.value(k) != v)}
    assert not wrong, wrong
    with open_database(settings).begin() as s:
        kinds = {(e.action, e.object_type) for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "ivan"))}
    assert {("create", "form_upload"), ("read", "form_upload"), ("create", "form_template"),
            ("read", "form_template")} <= kinds

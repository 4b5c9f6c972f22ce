"""The console's form page (bring your own form, issue 20) over HTTP: administrators only, CSRF, uploads
refused with a clear message (too large, not a form, damaged), kept privately under an opaque id and
removed after, and accepting writes the same template as ``frontdesk forms add --accept --map``.
The same page in a real browser: tests/test_console_forms_browser.py."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from tests.conftest import run_cli
from tests.console_helpers import add_user, console_settings, csrf_of, sign_in
from tests.test_forms_onboarding import _odd_form

MEMBER = "insurance.primary.member_id"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Any, TestClient]:
    settings = console_settings(tmp_path)
    settings.forms_dirs = [tmp_path / "forms"]
    add_user(settings, "ana")
    add_user(settings, "ivan", "admin")
    from frontdesk.console import create_app

    return settings, TestClient(create_app(settings))


def _upload(client: TestClient, data: bytes, name: str = "odd.pdf", csrf: str | None = None,
            form_id: str = "") -> Any:
    token = csrf if csrf is not None else csrf_of(client.get("/admin/forms").text)
    return client.post("/admin/forms", data={"csrf": token, "form_id": form_id},
                       files={"form": (name, data, "application/pdf")}, follow_redirects=False)


def _area(client: TestClient) -> Path:
    return Path(client.app.state.form_uploads.root)  # type: ignore[attr-defined]


def _template_fields(path: Path) -> dict[str, tuple[Any, ...]]:
    """What a template means: every widget's name, kind, place, tooltip and original field name."""
    out = {}
    reader = PdfReader(str(path))
    for page in reader.pages:
        for ref in page.get("/Annots") or []:
            a = ref.get_object()
            out[str(a["/T"])] = (str(a["/FT"]), [round(float(v), 2) for v in a["/Rect"]], str(a.get("/TU")),
                                 str(a.get("/FrontdeskSource")))
    return out


def test_form_pages_need_an_administrator(world: tuple[Any, TestClient], tmp_path: Path) -> None:
    settings, client = world
    pdf = _odd_form(tmp_path / "odd.pdf").read_bytes()
    for path in ("/admin/forms", "/admin/templates/odd", "/admin/templates/odd/check.pdf",
                 "/admin/forms/frm-0123456789abcdef"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    r = client.post("/admin/forms", files={"form": ("odd.pdf", pdf, "application/pdf")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    sign_in(client, "ana")  # staff: the front desk's pages, not the practice's configuration
    assert client.get("/admin/forms").status_code == 403
    home = client.get("/")
    assert "/admin/forms" not in home.text  # no link to a page she cannot open
    r = _upload(client, pdf, csrf=csrf_of(home.text))
    assert r.status_code == 403
    assert not list(_area(client).iterdir()) and not (tmp_path / "forms").exists()


def test_upload_without_the_csrf_token_is_refused_and_nothing_kept(world: tuple[Any, TestClient],
                                                                   tmp_path: Path) -> None:
    _settings, client = world
    sign_in(client, "ivan")
    r = _upload(client, _odd_form(tmp_path / "odd.pdf").read_bytes(), csrf="forged")
    assert r.status_code == 403 and "out of date" in r.text
    assert not list(_area(client).iterdir())


def test_oversized_and_non_pdf_uploads_are_refused_with_a_reason(world: tuple[Any, TestClient], tmp_path: Path) -> None:
    settings, client = world
    settings.extraction.max_file_mb = 0.05  # intake's own limit is lower than the form page's: it applies
    sign_in(client, "ivan")
    big = _odd_form(tmp_path / "odd.pdf").read_bytes() + b"%" + b"x" * 60_000
    r = _upload(client, big)
    assert r.status_code == 413
    assert "Not uploaded: the file is 0.1 MB, over the 0.05 MB limit for a form." in r.text, re.findall("Not uploaded[^<]*", r.text)
    r = _upload(client, b"PK\x03\x04" + b"\x00" * 500, name="intake.docx")
    assert r.status_code == 400 and "not a PDF (or a TIFF, JPEG or PNG scan of the blank form)" in r.text
    r = _upload(client, b"", name="empty.pdf")
    assert r.status_code == 400 and "choose the form" in r.text
    r = _upload(client, b"%PDF-1.4 garbage", name="broken.pdf")  # read in its own process: refused, not crashed
    assert r.status_code == 422 and "The form could not be read:" in r.text and "damaged" in r.text
    r = _upload(client, b"%PDF-1.4 fine", form_id="../../etc/passwd")
    assert r.status_code == 400 and "template id" in r.text
    settings.extraction.read_limit_seconds = 0.3  # a form whose reading hangs is stopped, not waited on
    r = _upload(client, _odd_form(tmp_path / "odd.pdf").read_bytes())
    assert r.status_code == 422 and "reading the form took longer than 0.3 s and was stopped" in r.text
    assert not list(_area(client).iterdir())  # nothing refused is kept
    assert client.get("/admin/forms/..%2F..%2Fetc").status_code == 404
    assert client.get("/admin/templates/..%2Fodd").status_code == 404


def test_accept_writes_the_template_forms_add_would_write(world: tuple[Any, TestClient], tmp_path: Path,
                                                         fd_env: dict[str, str]) -> None:
    settings, client = world
    src = _odd_form(tmp_path / "odd.pdf")
    sign_in(client, "ivan")
    r = _upload(client, src.read_bytes(), name="Westlake odd form.pdf")
    assert r.status_code == 303
    upload_id = r.headers["location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"frm-[0-9a-f]{16}", upload_id)
    area = _area(client)
    folder = area / upload_id
    assert stat.S_IMODE(area.stat().st_mode) == 0o700 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    kept = [p for p in folder.iterdir() if p.name.startswith("form.")]
    assert [p.name for p in kept] == ["form.pdf"]  # named by us, not by the person's file name
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())

    page = client.get(f"/admin/forms/{upload_id}")
    assert page.status_code == 200
    html = page.text
    # Four numbered boxes drawn on the page image, each with its label, key drop-down, confidence, reason.
    assert f'href="/admin/forms/{upload_id}/pages/1"' in html and html.count("<rect ") == 4
    image = client.get(f"/admin/forms/{upload_id}/pages/1")
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/admin/forms/{upload_id}/pages/2").status_code == 404
    assert '<option value="patient.last_name" selected>' in html  # Text1: proposed and preselected
    assert 'id="box-2" class="conflict attention"' in html and 'id="box-3" class="conflict attention"' in html
    assert 'id="box-4" class="unknown"' in html  # nothing fits "Favourite colour": left out
    assert "Same key as box 3" in html and "Member ID:" in html
    assert 'name="form_id" value="westlake_odd_form"' in html  # a suggested id, slugged from the file name

    form = {"csrf": csrf_of(html), "form_id": "odd", "key:1": "patient.last_name", "key:2": MEMBER,
            "key:3": MEMBER, "key:4": "-"}
    r = client.post(f"/admin/forms/{upload_id}/accept", data=form, follow_redirects=False)
    assert r.status_code == 400 and "boxes 2, 3 all have insurance.primary.member_id" in r.text
    assert not (tmp_path / "forms").exists()
    r = client.post(f"/admin/forms/{upload_id}/accept", data={**form, "key:3": "patient.sex_checkbox_nonsense"},
                    follow_redirects=False)
    assert r.status_code == 400 and "not a key such a box can have" in r.text
    r = client.post(f"/admin/forms/{upload_id}/accept", data={**form, "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    choices = {**form, "key:3": "insurance.secondary.member_id"}
    r = client.post(f"/admin/forms/{upload_id}/accept", data=choices, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/templates/odd?written=1"
    written = tmp_path / "forms" / "odd.pdf"
    assert written.is_file()
    assert not folder.exists()  # the upload is removed once its template is written
    assert client.get(f"/admin/forms/{upload_id}").status_code == 404

    # The same choices at the command line write the same template.
    cli_forms = tmp_path / "cli-forms"
    env = {**fd_env, "FRONTDESK_FORMS_DIRS": json.dumps([str(cli_forms)])}
    out = run_cli("forms", "add", str(src), "--id", "odd", "--accept", "--map", "Text1=patient.last_name",
                  "--map", f"Text2={MEMBER}", "--map", "Text3=insurance.secondary.member_id", "--map", "Text4=-",
                  env=env)
    assert out.returncode == 0, out.stderr
    ours, theirs = _template_fields(written), _template_fields(cli_forms / "odd.pdf")
    assert ours == theirs and set(ours) == {"patient.last_name", MEMBER, "insurance.secondary.member_id"}
    assert ours[MEMBER][3] == "Text2"  # copies of the original form are recognised by their old names
    a, b = PdfReader(str(written)).pages[0], PdfReader(str(cli_forms / "odd.pdf")).pages[0]
    assert a.get_contents().get_data() == b.get_contents().get_data()  # type: ignore[union-attr]

    # The written page links to the check sheet, which prints each key in its box.
    done = client.get("/admin/templates/odd?written=1")
    assert done.status_code == 200 and 'href="/admin/templates/odd/check.pdf"' in done.text
    assert "consent.signature" in done.text  # the rules need a signature box the form lacks
    sheet = client.get("/admin/templates/odd/check.pdf")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "application/pdf"
    from io import BytesIO

    assert MEMBER in (PdfReader(BytesIO(sheet.content)).pages[0].extract_text() or "")
    assert not list(area.glob("check-*"))  # the sheet was made in the private area and removed
    # A second template with the same id is refused, not overwritten.
    r = _upload(client, src.read_bytes(), form_id="odd")
    again = r.headers["location"].rsplit("/", 1)[1]
    r = client.post(f"/admin/forms/{again}/accept", data={**choices, "csrf": csrf_of(done.text)},
                    follow_redirects=False)
    assert r.status_code == 400 and "a template named odd is already in use" in r.text
    r = client.post(f"/admin/forms/{again}/discard", data={"csrf": csrf_of(done.text)}, follow_redirects=False)
    assert r.status_code == 303 and not (area / again).exists()

    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent

    with open_database(settings).begin() as s:
        events = {(e.action, e.object_type, e.object_id) for e in
                  s.scalars(select(AuditEvent).where(AuditEvent.actor == "ivan"))}
    assert {("create", "form_upload", upload_id), ("read", "form_upload", upload_id),
            ("create", "form_template", "odd"), ("read", "form_template", "odd"),
            ("delete", "form_upload", again)} <= events

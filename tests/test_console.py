"""Staff console over HTTP (FastAPI's test client): sign-in, sessions, CSRF, roles, no patient data
without a login, the review decision path, and the CLI twins of the console's actions.
The same flows in a real browser: tests/test_console_browser.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import run_cli
from tests.console_helpers import (
    PASSWORD,
    add_user,
    console_settings,
    csrf_of,
    review_form,
    seed_scanned_review,
    sign_in,
)

MEMBER = "insurance.primary.member_id"


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Any, Any]:
    settings = console_settings(tmp_path)
    seed = seed_scanned_review(settings, tmp_path)
    add_user(settings, "ana")
    add_user(settings, "ivan", "admin")
    return settings, seed


def _client(settings: Any, base_url: str = "http://testserver") -> TestClient:
    from frontdesk.console import create_app

    return TestClient(create_app(settings), base_url=base_url)


def _patient(settings: Any, patient_id: str) -> Any:
    from frontdesk.db import open_database
    from frontdesk.db.models import Patient

    with open_database(settings).begin() as s:
        p = s.get(Patient, patient_id)
        return p.last_name, p.first_name, {f.key: f.value for f in p.fields}


def test_no_patient_data_without_a_login_on_any_route(seeded: tuple[Any, Any]) -> None:
    """Every route of the app, enumerated from the app itself, with real ids: no page or file answers
    with patient data before sign-in; each sends the visitor to the sign-in page."""
    settings, seed = seeded
    client = _client(settings)
    last, first, fields = _patient(settings, seed.patient_id)
    from frontdesk.db import open_database
    from frontdesk.db.models import FlagRow

    with open_database(settings).begin() as s:
        flag_id = s.scalars(select(FlagRow.id).where(FlagRow.document_id == seed.review_doc)).first()
    ids = {"doc_id": seed.review_doc, "patient_id": seed.patient_id, "letter_id": seed.letter_id,
           "flag_id": str(flag_id), "merge_id": "mrg-000000000000", "field": MEMBER, "name": "console.css"}
    routes = [r for r in client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    assert len(routes) >= 20
    secrets = [last, first, str(fields.get("patient.address.street") or last)]
    open_routes = {"/login", "/static/{name}"}
    for route in routes:
        path = route.path
        for k, v in ids.items():
            path = path.replace("{" + k + "}", v)
        assert "{" not in path, route.path
        for method in route.methods:
            r = client.request(method, path, follow_redirects=False)
            body = r.content.decode("utf-8", "replace")
            assert not any(x in body for x in secrets), f"{method} {route.path} shows patient data"
            if route.path in open_routes:
                continue
            assert r.status_code in (303, 403), f"{method} {route.path}: {r.status_code}"
            if r.status_code == 303:
                assert r.headers["location"] == "/login"


def test_sign_in_session_cookie_and_security_headers(tmp_path: Path) -> None:
    settings = console_settings(tmp_path, secure_cookies=True)
    add_user(settings, "ana")
    client = _client(settings, "https://testserver")  # Secure cookies travel over HTTPS only
    page = client.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "SAMEORIGIN" and page.headers["cache-control"] == "no-store"
    r = client.post("/login", data={"csrf": csrf_of(page.text), "name": "ana", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("fd_session="))
    low = cookie.lower()
    assert "httponly" in low and "secure" in low and "samesite=strict" in low


def test_wrong_password_and_rate_limit(tmp_path: Path) -> None:
    settings = console_settings(tmp_path, login_attempts=3)
    add_user(settings, "ana")
    client = _client(settings)
    for _ in range(3):
        r = sign_in(client, "ana", "wrong password!")
        assert r.status_code == 401 and "wrong user name or password" in r.text
    r = sign_in(client, "ana")  # the right password, but too many failures just now
    assert r.status_code == 401 and "too many failed sign-ins" in r.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_state_change_without_csrf_token_is_refused(seeded: tuple[Any, Any]) -> None:
    settings, seed = seeded
    client = _client(settings)
    assert sign_in(client, "ana").status_code == 200
    r = client.post(f"/review/{seed.review_doc}", data={f"choice:{MEMBER}": "absent"})
    assert r.status_code == 403
    r = client.post(f"/review/{seed.review_doc}", data={"csrf": "forged", f"choice:{MEMBER}": "absent"})
    assert r.status_code == 403
    from frontdesk.db import open_database
    from frontdesk.db.models import Document

    with open_database(settings).begin() as s:
        assert s.get(Document, seed.review_doc).outcome == "needs_review"


def test_staff_cannot_reach_admin_pages(seeded: tuple[Any, Any]) -> None:
    settings, _seed = seeded
    staff = _client(settings)
    sign_in(staff, "ana")
    assert staff.get("/admin/users").status_code == 403
    assert staff.get("/admin/audit").status_code == 403
    home = staff.get("/")
    r = staff.post("/admin/users", data={"csrf": csrf_of(home.text), "action": "add", "name": "eve",
                                         "role": "admin", "password": PASSWORD})
    assert r.status_code == 403
    admin = _client(settings)
    sign_in(admin, "ivan")
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "ana" in page.text
    audit_page = admin.get("/admin/audit")
    assert audit_page.status_code == 200 and "login" in audit_page.text


def test_idle_session_expires(tmp_path: Path) -> None:
    settings = console_settings(tmp_path, idle_minutes=0.02)  # 1.2 s
    add_user(settings, "ana")
    client = _client(settings)
    sign_in(client, "ana")
    assert client.get("/", follow_redirects=False).status_code == 200
    time.sleep(2.0)
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_disabled_user_is_signed_out_at_once(seeded: tuple[Any, Any]) -> None:
    settings, _seed = seeded
    client = _client(settings)
    sign_in(client, "ana")
    from frontdesk import users
    from frontdesk.db import open_database

    with open_database(settings).begin() as s:
        users.disable_user(s, "ana")
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in(client, "ana").status_code == 401


def test_review_correction_clears_flag_withdraws_letter_and_is_audited(seeded: tuple[Any, Any]) -> None:
    settings, seed = seeded
    client = _client(settings)
    sign_in(client, "ana")
    page = client.get(f"/review/{seed.review_doc}")
    assert page.status_code == 200
    assert f'/crops/{seed.review_doc}/{MEMBER}' in page.text
    crop = client.get(f"/crops/{seed.review_doc}/{MEMBER}")
    assert crop.status_code == 200 and crop.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = client.post(f"/review/{seed.review_doc}", data=review_form(page.text, **{MEMBER: "XQZ 44812-09"}),
                    follow_redirects=False)
    assert r.status_code == 303
    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent, Document, FlagRow, Letter

    with open_database(settings).begin() as s:
        assert s.get(Document, seed.review_doc).outcome == "filed"
        assert s.get(Letter, seed.letter_id).status == "void"
        open_flags = s.scalars(select(FlagRow).where(FlagRow.document_id == seed.review_doc,
                                                     FlagRow.status == "open")).all()
        assert not [f for f in open_flags if f.severity == "error"]
        actors = {(e.actor, e.object_type) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.patient_id == seed.patient_id, AuditEvent.action == "update"))}
        assert ("ana", "document") in actors and ("ana", "letter") in actors
    _last, _first, fields = _patient(settings, seed.patient_id)
    assert fields[MEMBER] == "XQZ4481209"
    # The person's name and the change are on the patient page's audit trail.
    patient_page = client.get(f"/patients/{seed.patient_id}")
    assert "XQZ4481209" in patient_page.text and "ana" in patient_page.text and "Withdrawn" in patient_page.text


def test_search_is_posted_and_finds_by_name_dob_or_member_id(seeded: tuple[Any, Any]) -> None:
    settings, seed = seeded
    last, first, fields = _patient(settings, seed.patient_id)
    client = _client(settings)
    home = sign_in(client, "ana")
    assert client.get(f"/search?q={last}").status_code == 405  # no search words in a URL
    r = client.post("/search", data={"csrf": csrf_of(home.text), "q": last})
    assert f"/patients/{seed.patient_id}" in r.text
    dob = fields["patient.date_of_birth"]
    r = client.post("/search", data={"csrf": csrf_of(home.text), "q": dob})
    assert f"/patients/{seed.patient_id}" in r.text


def _cli_env(settings: Any, tmp: Path, actor: str) -> dict[str, str]:
    env = dict(os.environ)
    env["FRONTDESK_STORAGE__ROOT"] = str(settings.storage.root)
    env["FRONTDESK_STORAGE__SPOOL"] = str(settings.storage.spool)
    env["FRONTDESK_DATABASE_URL"] = settings.database_url
    env["FRONTDESK_INBOX"] = str(tmp / "inbox")
    env["FRONTDESK_ACTOR"] = actor
    return env


def test_cli_users_review_and_merge_write_the_same_audit_events(seeded: tuple[Any, Any], tmp_path: Path) -> None:
    settings, seed = seeded
    env = _cli_env(settings, tmp_path, "it-admin")
    import subprocess

    from tests.conftest import FRONTDESK

    added = subprocess.run([FRONTDESK, "users", "add", "bea", "--role", "staff"], input="another long secret\n",
                           capture_output=True, text=True, env=env, timeout=120)
    assert added.returncode == 0, added.stderr
    short = subprocess.run([FRONTDESK, "users", "add", "cid"], input="short\n", capture_output=True, text=True,
                           env=env, timeout=120)
    assert short.returncode != 0 and "at least 10 characters" in short.stderr
    listed = run_cli("users", "list", "--json", env=env)
    assert {u["name"] for u in json.loads(listed.stdout)} == {"ana", "ivan", "bea"}
    queue = json.loads(run_cli("review", "list", "--json", env=env).stdout)
    assert [q["document_id"] for q in queue] == [seed.review_doc] and queue[0]["overdue"] is False

    shown = json.loads(run_cli("review", "show", seed.review_doc, "--json", env=env).stdout)
    keys = [f["key"] for f in shown["fields"]]
    assert MEMBER in keys
    accept = [a for k in keys if k != MEMBER for a in ("--accept", k)]
    decided = subprocess.run([FRONTDESK, "review", "decide", seed.review_doc, *accept, "--correct", MEMBER, "--json"],
                             input="ABC123456\n", capture_output=True, text=True, env=env, timeout=300)
    assert decided.returncode == 0, decided.stderr
    out = json.loads(decided.stdout)
    assert out["status"] == "filed" and out["letters_voided"] == [seed.letter_id]

    # A second record of the same person (e.g. typed by hand): merged, then the merge undone.
    from frontdesk.db import open_database
    from frontdesk.db.models import AuditEvent, Document, Patient

    with open_database(settings).begin() as s:
        p = s.get(Patient, seed.patient_id)
        twin = Patient(match_key="x|y|2000-01-01", first_name=p.first_name, last_name=p.last_name + "e",
                       date_of_birth=p.date_of_birth)
        s.add(twin)
        s.flush()
        twin_id = twin.id
        s.get(Document, seed.review_doc).patient_id = twin_id
    merged = run_cli("patients", "merge", seed.patient_id, twin_id, env=env)
    assert merged.returncode == 0, merged.stderr
    merge_id = merged.stdout.split("(")[1].split(";")[0]
    with open_database(settings).begin() as s:
        assert s.get(Document, seed.review_doc).patient_id == seed.patient_id
    undone = run_cli("patients", "unmerge", merge_id, env=env)
    assert undone.returncode == 0, undone.stderr
    with open_database(settings).begin() as s:
        assert s.get(Document, seed.review_doc).patient_id == twin_id
        events = s.scalars(select(AuditEvent).where(AuditEvent.actor == "it-admin")).all()
        details = " ".join(e.detail or "" for e in events)
        assert f"merge {merge_id}" in details and "review:" in details and "merge" in details


def test_worklist_for_a_day_links_to_patients_and_stores_nothing(tmp_path: Path) -> None:
    """The pre-visit worklist page shows the same rows as ``frontdesk check`` for the chosen day, each
    linked to the patient's record, without storing a check run or queueing reminders."""
    from frontdesk.db import open_database
    from frontdesk.db.models import CheckRun, Letter
    from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate

    settings = console_settings(tmp_path)
    settings.checks.timezone = TIMEZONE
    settings.checks.appointments_dir = tmp_path / "appointments"
    settings.checks.appointments_dir.mkdir()
    sc = generate(12, seed=7)
    db = open_database(settings)
    sc.load_into_db(db)
    sc.write_appointment_report(settings.checks.appointments_dir / "appointments.csv")
    add_user(settings, "ana")
    client = _client(settings)
    sign_in(client, "ana")
    page = client.get(f"/worklist?date={VISIT_DATE.isoformat()}")
    assert page.status_code == 200
    assert page.text.count('<tr><td>') == 12
    assert "/patients/pat-" in page.text and "Missing items" in page.text
    with db.begin() as s:
        assert s.scalars(select(CheckRun)).first() is None
        assert s.scalars(select(Letter)).first() is None


def test_overdue_review_stays_in_the_queue(tmp_path: Path) -> None:
    """A review older than its deadline is listed as overdue, never accepted by itself."""
    settings = console_settings(tmp_path, review_deadline_hours=0.0001)
    seed = seed_scanned_review(settings, tmp_path)
    add_user(settings, "ana")
    time.sleep(1.0)
    client = _client(settings)
    sign_in(client, "ana")
    queue = client.get("/review")
    assert f"/review/{seed.review_doc}" in queue.text and "Overdue" in queue.text and "1 overdue" in queue.text
    assert "1 overdue" in client.get("/").text
    from frontdesk.db import open_database
    from frontdesk.db.models import Document

    with open_database(settings).begin() as s:
        assert s.get(Document, seed.review_doc).outcome == "needs_review"

"""Shared set-up for the console tests: settings in a temp folder, a signed-in client, seeded documents."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery"


def console_settings(tmp: Path, **console: Any) -> Any:
    from frontdesk.settings import load_settings

    return load_settings(storage={"root": tmp / "storage", "spool": tmp / "spool"},
                         database_url=f"sqlite:///{tmp / 'frontdesk.db'}", inbox=tmp / "inbox",
                         console={"secure_cookies": False, **console})


def add_user(settings: Any, name: str, role: str = "staff") -> None:
    from frontdesk import users
    from frontdesk.db import open_database

    with open_database(settings).begin() as s:
        users.add_user(s, name, role, PASSWORD)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def sign_in(client: Any, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password},
                       follow_redirects=True)


@dataclass
class Seeded:
    review_doc: str  # a scanned intake form with the member ID left blank (needs review, letter pending)
    patient_id: str
    letter_id: str


def seed_scanned_review(settings: Any, tmp: Path, seed: int = 5) -> Seeded:
    """A scanned intake form whose member ID is blank: filed needs_review, its missing-insurance letter
    written and waiting for the next mailing."""
    from frontdesk.db.models import Letter
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import scans

    case = scans.generate_scans(tmp / f"scan{seed}", 1, seed=seed, scenarios=("member_id_blank",),
                                tiers=("scan300",))[0]
    pipeline = Pipeline(settings)
    work = pipeline.intake(case.path)
    assert work.status == "needs_review" and work.document_id and work.patient_id
    pipeline.send_letters([work])
    with pipeline.db.begin() as s:
        letter = s.query(Letter).filter(Letter.document_id == work.document_id).one()
        assert letter.status == "pending"
        letter_id = letter.id
    return Seeded(work.document_id, work.patient_id, letter_id)


def review_form(html: str, **values: str) -> dict[str, str]:
    """What the browser sends when the review page's form is saved as shown, with ``values`` (field
    key -> text) typed over the values read."""
    import html as html_lib

    form: dict[str, str] = {"csrf": csrf_of(html)}
    for name, value in re.findall(r'name="((?:value|read):[^"]+)" value="([^"]*)"', html):
        form[html_lib.unescape(name)] = html_lib.unescape(value)
    for name in re.findall(r'name="(choice:[^"]+)" value="accept" checked', html):
        form[html_lib.unescape(name)] = "accept"
    for key, text in values.items():
        form[f"value:{key}"] = text
    return form

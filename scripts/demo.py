"""The demo: a practice's first week on synthetic patients, through `frontdesk process` and `frontdesk mail`.

Day one, a dozen registration forms (some missing insurance) and one filled in by hand and scanned; one
of the new patients speaks Spanish. Later that week, the other forms a practice hands out (medical
history, HIPAA acknowledgment, release of information, financial policy), once filled in on screen and
once on paper and scanned, and a second insurance card. Then the mail batch: every letter those events
queued (welcome, missing insurance, ...) in one print-ready PDF, each in its patient's language.

Everything goes under var/demo/ so a real installation's storage is never touched. Seeded: the same
documents every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "var" / "demo"
FORMS = ROOT / "templates" / "forms"
OTHER_FORMS = ("medical_history", "hipaa_acknowledgment", "release_of_information", "financial_policy")


def _identity(patient: dict[str, Any]) -> dict[str, Any]:
    """What every form of the practice asks first: who the patient is (as they wrote it on registration)."""
    return {k: patient[k] for k in ("patient.last_name", "patient.first_name", "patient.date_of_birth")}


def _other_form(form_id: str, patient: dict[str, Any], rnd: random.Random, fake: Any, today: date) -> dict[str, Any]:
    """The values ``patient`` writes on ``form_id``: that form's answers, signed in the patient's name."""
    from tests.fixtures import generator as gen
    from tests.fixtures import history

    if form_id == "medical_history":
        values, *_ = history.make_history(rnd, fake, "complete", today, history.form_rows())
    else:
        values, _truth = gen.make_form_record(rnd, fake, form_id, "complete", today)
    values = dict(values)
    values.update(_identity(patient))
    name = f"{patient['patient.first_name']} {patient['patient.last_name']}"
    for key in values:
        if key.endswith("signature") and values[key]:
            values[key] = name
    return values


def write_first_day(inbox: Path, today: date) -> tuple[list[Any], dict[str, Any]]:
    """Registration forms of day one: the generated dozen, a handwritten scan and a Spanish speaker's."""
    from faker import Faker

    from tests.fixtures import generator as gen
    from tests.fixtures.generator import generate
    from tests.fixtures.scans import generate_scans

    cases = generate(inbox, 12, seed=7, today=today)
    (inbox / "truth.json").unlink(missing_ok=True)  # the answer key is for tests, not for the inbox
    # One form filled in with a pen and scanned at 300 dpi, as most forms in a waiting room are.
    hand = generate_scans(DEMO / "handwritten", 1, seed=17, tiers=("hand300",), today=today)[0]
    shutil.move(hand.path, inbox / f"handwritten-intake{hand.path.suffix}")
    shutil.rmtree(DEMO / "handwritten", ignore_errors=True)
    # A new patient who asks for Spanish on the form: her letters come from the Spanish templates.
    rnd, fake = random.Random(70), Faker("en_US")  # a US address; the name is set below
    fake.seed_instance(70)
    spanish = gen.make_patient(rnd, fake, "complete", today=today)
    spanish.update({"patient.first_name": "María José", "patient.last_name": "Hernández Ruiz",
                    "patient.preferred_language": "Español"})
    spanish = {k: v for k, v in spanish.items() if k in gen.widget_rects(FORMS / "new_patient_intake.pdf")}
    gen.fill_digital(FORMS / "new_patient_intake.pdf", spanish, inbox / "registration-spanish.pdf")
    return cases, spanish


def write_later_that_week(folder: Path, on_screen: dict[str, Any], on_paper: Any, today: date) -> None:
    """The other four forms, filled in on screen by one patient and on paper (then scanned) by another,
    and a second insurance card of the paper patient."""
    from faker import Faker

    from tests.fixtures import cards, scans
    from tests.fixtures import generator as gen

    folder.mkdir(parents=True)
    rnd, fake = random.Random(71), Faker("en_US")
    fake.seed_instance(71)
    for form_id in OTHER_FORMS:
        template = FORMS / f"{form_id}.pdf"
        gen.fill_digital(template, _other_form(form_id, on_screen, rnd, fake, today), folder / f"{form_id}-digital.pdf")
        pages = scans.print_form(template, _other_form(form_id, on_paper.patient, rnd, fake, today), rnd)
        scans.save_scan([scans.scan_page(p, "scan300", rnd) for p in pages], "scan300",
                        folder / f"{form_id}-scanned", rnd)
    primary = on_paper.truth.get("insurance.primary.payer_name")
    other = next(p.canonical for p in cards.PAYERS if p.canonical != primary)
    t = on_paper.truth
    holder = cards.Holder(str(t["patient.first_name"]), str(t["patient.last_name"]),
                          date.fromisoformat(str(t["patient.date_of_birth"])))
    cards.card_for(holder, other, folder / "insurance-card-secondary", seed=72, capture="scan", today=today,
                   secondary=True)


def _run(frontdesk: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(frontdesk), *args], env=env, text=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    global DEMO
    parser = argparse.ArgumentParser(description="A practice's first week on generated patients.")
    parser.add_argument("--out", type=Path, default=DEMO, help="folder for everything the demo makes "
                        "(default: var/demo; emptied first)")
    DEMO = parser.parse_args(argv).out.resolve()
    sys.path.insert(0, str(ROOT))
    shutil.rmtree(DEMO, ignore_errors=True)
    inbox = DEMO / "inbox"
    inbox.mkdir(parents=True)
    today = date.today()
    cases, spanish = write_first_day(inbox, today)
    on_paper = next(c for c in cases if c.scenario == "complete" and c.kind == "digital")
    week = DEMO / "later-that-week"
    write_later_that_week(week, spanish, on_paper, today)
    print(f"Day one: {len(cases)} registration forms, one handwritten scan and a Spanish speaker's form in {inbox}")
    print(f"Later that week: {', '.join(OTHER_FORMS)}, each filled in on screen and on paper (scanned), "
          f"and a second insurance card, in {week}\n")

    env = dict(os.environ,
               FRONTDESK_STORAGE__ROOT=str(DEMO / "storage"),
               FRONTDESK_STORAGE__SPOOL=str(DEMO / "spool"),
               FRONTDESK_DATABASE_URL=f"sqlite:///{DEMO / 'frontdesk.db'}",
               FRONTDESK_INBOX=str(inbox))
    frontdesk = Path(sys.executable).with_name("frontdesk")
    for folder in (inbox, week):
        rc = subprocess.call([str(frontdesk), "process", str(folder)], env=env)
        if rc != 0:
            return rc
        print()

    mail = _run(frontdesk, "mail", "--kind", "letters", "--out", str(DEMO / "print"), "--json", env=env)
    if mail.returncode != 0:
        print(mail.stderr, file=sys.stderr)
        return mail.returncode
    print_letters(env["FRONTDESK_DATABASE_URL"], json.loads(mail.stdout))
    print("\nThe handwritten form was read with tesseract and the handwriting engine (rapidocr); fields the "
          "two did not agree on, or that do not fit their type, are on the review worklist with the reason:\n"
          "`frontdesk review list`, or the staff console (`frontdesk console`).")
    return 0


def print_letters(database_url: str, batch: dict[str, Any]) -> None:
    """The demo's summary of letters: each one the week's events queued, its language, where it stands,
    and the print copy of the mail batch."""
    from sqlalchemy import select

    from frontdesk.db import open_database
    from frontdesk.db.models import Letter
    from frontdesk.language import context_language

    db = open_database(database_url)
    with db.begin() as s:
        letters = [(x.kind, context_language(x.context or {}), x.status, x.patient_id or "-", x.document_id or "-")
                   for x in s.scalars(select(Letter).order_by(Letter.kind, Letter.created_at))]
    if not letters:
        print("No letters were queued.")
        return
    print(f"{len(letters)} letters ({', '.join(f'{n} {k}' for k, n in sorted(batch.get('by_kind', {}).items()))} "
          f"in mail batch {batch.get('batch_id') or '-'}):")
    print(f"  {'letter':<20} {'language':<9} {'status':<8} {'patient':<22} from document")
    for kind, language, status, patient, document in letters:
        print(f"  {kind:<20} {language:<9} {status:<8} {patient:<22} {document}")
    for f in batch.get("print_files", []):
        print(f"Print-ready PDF: {f}")


if __name__ == "__main__":
    sys.exit(main())

"""Itemised invoices for self-pay visits (`frontdesk letters invoices VISITS.csv`): one per visit of a
patient who pays for their own care, queued into the mail batch like every letter, rendered from the Word
template with its payment stub; insured visits are left to claims; a visit that cannot be invoiced is
listed with the reason."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import pdfplumber
import pytest

from tests.conftest import run_cli

SELF_PAY: dict[str, Any] = {
    "patient.address.street": "48 Linden Ave", "patient.address.city": "Springfield",
    "patient.address.state": "IL", "patient.address.zip": "62702", "insurance.self_pay": True,
}
INSURED: dict[str, Any] = {**SELF_PAY, "insurance.self_pay": False, "insurance.primary.payer_name": "Acme Health",
                           "insurance.primary.member_id": "XQK83920417"}


def _patient(db: Any, first: str, last: str, dob: date, fields: dict[str, Any]) -> str:
    from frontdesk.db.models import Patient, PatientField
    from frontdesk.identity import match_key

    with db.begin() as s:
        p = Patient(match_key=match_key(first, last, dob), first_name=first, last_name=last, date_of_birth=dob)
        p.fields = [PatientField(key=k, value=v) for k, v in fields.items()]
        s.add(p)
        s.flush()
        return p.id


@pytest.fixture
def practice(tmp_path: Path, fd_env: dict[str, str]) -> tuple[dict[str, str], Path, dict[str, str]]:
    from frontdesk.db import open_database
    from frontdesk.settings import load_settings

    env = dict(fd_env, FRONTDESK_MAIL__OUTPUT_DIR=str(tmp_path / "mail"))
    db = open_database(load_settings(database_url=env["FRONTDESK_DATABASE_URL"]))
    ids = {
        "self_pay": _patient(db, "Rosa", "Delgado", date(1979, 6, 2), SELF_PAY),
        "insured": _patient(db, "Tom", "Becker", date(1966, 1, 9), INSURED),
        "no_address": _patient(db, "Ana", "Ruiz", date(1990, 3, 4), {"insurance.self_pay": True}),
    }
    db.dispose()
    ledger = tmp_path / "visits.csv"
    with ledger.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Visit ID", "Patient ID", "Date of service", "CPT", "Units", "Charge", "Diagnoses", "Description"])
        w.writerow(["V-1001", ids["self_pay"], "11/20/2026", "99203", "1", "165.00", "J02.9", ""])
        w.writerow(["V-1001", ids["self_pay"], "11/20/2026", "87880", "1", "35.00", "J02.9", "Rapid strep test"])
        w.writerow(["V-1001", ids["self_pay"], "11/20/2026", "85025", "2", "56.00", "J02.9", ""])
        w.writerow(["V-1002", ids["insured"], "11/20/2026", "99213", "1", "120.00", "I10", ""])
        w.writerow(["V-1003", ids["no_address"], "11/21/2026", "99213", "1", "120.00", "I10", ""])
        w.writerow(["V-1004", "pat-000000000000", "11/21/2026", "99213", "1", "120.00", "I10", ""])
    return env, ledger, ids


def test_a_self_pay_visit_gets_one_itemised_invoice_in_the_mail_batch(
        tmp_path: Path, practice: tuple[dict[str, str], Path, dict[str, str]]) -> None:
    env, ledger, ids = practice
    dry = run_cli("letters", "invoices", str(ledger), "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["would_queue"] == 1 and json.loads(dry.stdout)["queued"] == []

    first = run_cli("letters", "invoices", str(ledger), "--date", "2026-11-30", "--json", env=env)
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    assert run["visits"] == 4 and len(run["queued"]) == 1 and run["insured"] == 1
    reasons = {item["visit"]: item["reason"] for item in run["not_invoiced"]}
    assert reasons == {"V-1003": "the patient's record has no complete mailing address",
                       "V-1004": "no patient record with this id"}
    assert "V-1003" in first.stderr and "Ruiz" not in first.stderr  # ids, never names

    again = run_cli("letters", "invoices", str(ledger), "--date", "2026-11-30", "--json", env=env)
    assert json.loads(again.stdout)["queued"] == [] and json.loads(again.stdout)["already_invoiced"] == 1

    mailed = run_cli("mail", "--json", env=env, timeout=600)
    assert mailed.returncode == 0, mailed.stderr
    batch = json.loads(mailed.stdout)
    assert batch["by_kind"] == {"self_pay_invoice": 1}
    pdf = next(Path(p) for p in batch["print_files"] if p.endswith(".pdf"))
    with pdfplumber.open(pdf) as doc:
        text = "\n".join(page.extract_text() or "" for page in doc.pages)
    assert "Rosa Delgado" in text and "48 Linden Ave" in text  # through the window
    assert "INVOICE" in text and "Amount enclosed" in text  # the payment stub
    assert run["queued"][0].upper() in text  # invoice number on the stub
    for code, words, amount in (("99203", "Office visit, new patient", "$165.00"),  # config/services.yaml
                                ("87880", "Rapid strep test", "$35.00"),  # the ledger's own words
                                ("85025", "Complete blood count", "$56.00")):
        line = next(ln for ln in text.splitlines() if code in ln)
        assert words in line and amount in line, line
    assert "$256.00" in text  # the total, and the amount due
    assert "Becker" not in text  # the insured patient's visit goes by claim


def test_invoices_can_be_switched_off(tmp_path: Path, practice: tuple[dict[str, str], Path, dict[str, str]]) -> None:
    env, ledger, _ = practice
    config = tmp_path / "letters.yaml"
    config.write_text("letters:\n  self_pay_invoice:\n    enabled: false\n")
    off = run_cli("letters", "invoices", str(ledger), env=dict(env, FRONTDESK_LETTERS_FILE=str(config)))
    assert off.returncode == 0 and "switched off" in off.stdout

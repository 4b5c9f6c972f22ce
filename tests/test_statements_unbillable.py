"""Statements from a ledger that cannot be matched are not dropped quietly: every account that owes but
gets no statement is listed with the reason (summary, JSON), and an account number matched to a patient
once is remembered, so a later export whose rows lack the date of birth still reaches the record."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from frontdesk.letters.statements import read_ledger
from tests.conftest import run_cli
from tests.fixtures.ledger import AccountTruth, make_ledger

STATEMENT_DATE = date(2026, 11, 30)


def _blank_dob(path: Path, accounts: set[str]) -> None:
    """The billing system exported these accounts without the patient's date of birth."""
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    dob = rows[0].index("Patient DOB")
    for row in rows[1:]:
        if row[0] in accounts:
            row[dob] = ""
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _add_patient(db: Any, ledger_path: Path, account: str, *, address: bool) -> str:
    from frontdesk.db.models import Patient, PatientField
    from frontdesk.records import match_key

    ledger = read_ledger(ledger_path, today=STATEMENT_DATE)
    line = next(ln for ln in ledger.lines if ln.account == account)
    assert line.patient_dob is not None
    last, first = (x.strip() for x in line.patient.split(",", 1))
    with db.begin() as s:
        p = Patient(match_key=match_key(first, last, line.patient_dob), first_name=first, last_name=last,
                    date_of_birth=line.patient_dob)
        if address:
            p.fields = [PatientField(key=f"patient.address.{k}", value=v) for k, v in
                        {"street": "9 Elm Street", "city": "Peoria", "state": "IL", "zip": "61602"}.items()]
        s.add(p)
        s.flush()
        return p.id


def _billed(truth: dict[str, AccountTruth]) -> list[AccountTruth]:
    return [t for t in truth.values() if t.billed(500)]


def test_every_unbilled_account_is_listed_with_its_reason(tmp_path: Path, settings: Any) -> None:
    from frontdesk.db import open_database
    from frontdesk.letters.filing import issue_statements
    from frontdesk.storage import open_storage

    path = tmp_path / "ledger.csv"
    truth = make_ledger(path, accounts=8, seed=31, with_addresses=False, bad_accounts=0)
    billed = _billed(truth)
    assert len(billed) >= 4
    with_record, record_no_address, no_dob = billed[0], billed[1], billed[2]
    _blank_dob(path, {no_dob.account})
    db, storage = open_database(settings), open_storage(settings)
    _add_patient(db, path, with_record.account, address=True)
    incomplete = _add_patient(db, path, record_no_address.account, address=False)
    run = issue_statements(db, storage, settings, read_ledger(path, today=STATEMENT_DATE),
                           statement_date=STATEMENT_DATE, dry_run=True)
    assert run.would_issue == 1
    assert len(run.unbillable) == len(billed) - 1 == len(run.without_address)  # nobody dropped quietly
    by_rows = {u["rows"]: u["reason"] for u in run.unbillable}

    def reason(t: AccountTruth) -> str:
        return by_rows["row " + str(t.rows[0]) if len(t.rows) == 1 else f"rows {min(t.rows)}-{max(t.rows)}"]

    assert "no date of birth" in reason(no_dob)
    assert incomplete in reason(record_no_address) and "no complete address" in reason(record_no_address)
    for t in billed[3:]:
        assert "no patient record matches" in reason(t)
    db.dispose()


def test_the_command_lists_unbillable_accounts_in_its_summary_and_json(tmp_path: Path,
                                                                     fd_env: dict[str, str]) -> None:
    path = tmp_path / "ledger.csv"
    truth = make_ledger(path, accounts=6, seed=32, with_addresses=False, bad_accounts=1)
    owing = len(_billed(truth))
    proc = run_cli("letters", "statements", str(path), "--date", "2026-11-30", "--dry-run", env=fd_env)
    assert proc.returncode == 0, proc.stderr
    assert "cannot be billed:" in proc.stdout
    listed = [ln for ln in proc.stdout.splitlines() if ln.startswith("  ledger.csv ")]
    assert len(listed) >= owing - 1 and all("no address in the export" in ln or "could not be read" in ln
                                            for ln in listed)
    assert any("could not be read" in ln for ln in listed)  # the account with a broken row is named too
    proc = run_cli("letters", "statements", str(path), "--date", "2026-11-30", "--dry-run", "--json", env=fd_env)
    out = json.loads(proc.stdout)
    assert len(out["unbillable"]) == len(listed) and out["would_issue"] == 0
    for t in truth.values():  # rows and reasons only: no names or account numbers in the output
        assert t.guarantor not in proc.stdout and t.account not in proc.stdout


def test_a_matched_account_number_is_remembered(tmp_path: Path, settings: Any) -> None:
    from frontdesk.db import open_database
    from frontdesk.db.checks_models import PatientIdentifier
    from frontdesk.letters.filing import LEDGER_ACCOUNT, issue_statements
    from frontdesk.storage import open_storage

    path = tmp_path / "ledger.csv"
    truth = make_ledger(path, accounts=6, seed=33, with_addresses=False, bad_accounts=0)
    known = _billed(truth)[0]
    db, storage = open_database(settings), open_storage(settings)
    patient_id = _add_patient(db, path, known.account, address=True)
    dry = issue_statements(db, storage, settings, read_ledger(path, today=STATEMENT_DATE),
                           statement_date=STATEMENT_DATE, dry_run=True)
    assert dry.would_issue == 1
    with db.begin() as s:  # a dry run records nothing, not even what it learned
        assert s.scalars(select(PatientIdentifier).where(PatientIdentifier.system == LEDGER_ACCOUNT)).all() == []
    first = issue_statements(db, storage, settings, read_ledger(path, today=STATEMENT_DATE),
                             statement_date=STATEMENT_DATE)
    assert len(first.issued) == 1 and not first.render_failed
    with db.begin() as s:
        ids = s.scalars(select(PatientIdentifier).where(PatientIdentifier.system == LEDGER_ACCOUNT)).all()
        assert [i.patient_id for i in ids] == [patient_id]
    # Next month's export has no dates of birth at all: the account number still finds the record.
    later = tmp_path / "ledger-december.csv"
    later.write_bytes(path.read_bytes())
    _blank_dob(later, set(truth))
    run = issue_statements(db, storage, settings, read_ledger(later, today=date(2026, 12, 31)),
                           statement_date=date(2026, 12, 31), dry_run=True)
    assert run.would_issue == 1 and run.matched_by_account == 1
    assert all("no date of birth" in u["reason"] for u in run.unbillable)
    db.dispose()

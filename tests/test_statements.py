"""Patient statements from a ledger export: amounts, aging, the minimum, hostile exports, and issuing
them exactly once per account and statement date."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frontdesk.letters.statements import (
    LedgerError,
    aging,
    bucket_of,
    build_drafts,
    money,
    parse_money,
    read_ledger,
)
from tests.conftest import run_cli
from tests.fixtures.ledger import HEADER, make_ledger

STATEMENT_DATE = date(2026, 11, 30)


def cents(value: Decimal) -> int:
    return int(value * 100)


# --- amounts and aging -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("", "0.00"), ("0", "0.00"), ("12", "12.00"), ("12.5", "12.50"), ("$1,234.56", "1234.56"),
    ("-12.00", "-12.00"), ("($12.00)", "-12.00"), ("(12.00)", "-12.00"), ("$-3.10", "-3.10"), (" 7.25 ", "7.25"),
])
def test_money_is_read_exactly(text: str, value: str) -> None:
    assert parse_money(text) == Decimal(value)


@pytest.mark.parametrize("text", ["twelve", "1e5", "NaN", "Infinity", "12.345", "1.2.3", "--5", "$", "()",
                                  "1000000.00", "=1+1", "12,34.5x", "125,00", "(-5)"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_money(text)


def test_money_prints_as_on_a_bill() -> None:
    assert money(Decimal("1234.5")) == "$1,234.50" and money(Decimal("-12")) == "-$12.00"


def test_aging_buckets_and_credits_pay_the_oldest_first() -> None:
    assert [bucket_of(d) for d in (-3, 0, 30, 31, 60, 61, 90, 91, 400)] == [0, 0, 0, 1, 1, 2, 2, 3, 3]

    class L:
        def __init__(self, days: int, balance: str) -> None:
            self.date_of_service = date.fromordinal(STATEMENT_DATE.toordinal() - days)
            self.balance = Decimal(balance)

    lines: Any = [L(10, "50.00"), L(45, "20.00"), L(75, "30.00"), L(120, "40.00"), L(5, "-55.00")]
    got = aging(lines, STATEMENT_DATE)
    assert got == {"current": Decimal("50.00"), "days_31_60": Decimal("20.00"), "days_61_90": Decimal("15.00"),
                   "over_90": Decimal("0.00")}
    assert sum(got.values()) == sum(line.balance for line in lines)


# --- reading an export -----------------------------------------------------------------------------------


def test_statements_match_the_generated_truth(tmp_path: Path) -> None:
    truth = make_ledger(tmp_path / "ledger.csv", accounts=60, seed=3, bad_accounts=2)
    ledger = read_ledger(tmp_path / "ledger.csv", today=STATEMENT_DATE)
    assert ledger.rows == sum(len(t.rows) for t in truth.values())
    bad = {a for a, t in truth.items() if t.unreadable}
    assert ledger.bad_accounts == bad and len(ledger.problems) == 2
    for problem in ledger.problems:  # row numbers and column names, never the value
        assert problem.startswith("row ") and "twelve" not in problem and "insurance paid" in problem

    drafts, below = build_drafts(ledger, statement_date=STATEMENT_DATE, minimum=Decimal("5.00"))
    billed = {a for a, t in truth.items() if t.billed(500)}
    assert {d.account for d in drafts} == billed
    assert below == sum(1 for t in truth.values() if not t.unreadable and t.balance_cents <= 500)
    assert any(t.balance_cents < 0 for t in truth.values())  # the seed has an account in credit
    for draft in drafts:
        t = truth[draft.account]
        assert cents(draft.amount_due) == t.balance_cents
        assert tuple(cents(draft.aging[b]) for b in ("current", "days_31_60", "days_61_90", "over_90")) == \
            t.aging_cents
        assert draft.guarantor == t.guarantor and draft.address_lines == t.address_lines
        assert draft.rows == sorted(draft.rows, key=lambda r: (next(
            ln.date_of_service for ln in draft.lines if ln.row == r), r))
    # The minimum is exclusive: an account owing exactly the minimum gets no statement.
    some = drafts[0]
    drafts_at, _ = build_drafts(ledger, statement_date=STATEMENT_DATE, minimum=some.amount_due)
    assert some.account not in {d.account for d in drafts_at}


def test_header_spellings_delimiters_and_encodings(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    rows = ["ACCT NO;Pt Name;Service Date;CPT;Desc;Charges;Ins Pmt;Write-off;Pat Paid",
            "A1;GARCÍA, JOSÉ;03/04/2026;99213;Office visit;125,00;0;0;0",
            "A1;GARCÍA, JOSÉ;03/05/2026;99213;Office visit;$125.00;$100.00;$5.00;$0.00"]
    path.write_bytes("\n".join(rows).encode("cp1252"))
    ledger = read_ledger(path, today=STATEMENT_DATE)
    assert len(ledger.lines) == 1 and ledger.problems == ["row 2: cannot read charge"]
    assert ledger.lines[0].patient == "GARCÍA, JOSÉ" and ledger.lines[0].balance == Decimal("20.00")
    drafts, _ = build_drafts(ledger, statement_date=STATEMENT_DATE, minimum=Decimal("0"))
    assert drafts == []  # the account has an unreadable row: no statement rather than a wrong one


@pytest.mark.parametrize(("content", "why"), [
    (b"", "empty"),
    (b"name,amount\nx,1\n", "no column for account"),
    (b"Account,Patient\x00,DOS\n", "binary"),
    (b"\xff\xfe\x00A\x00c", "binary"),
])
def test_files_that_are_not_ledgers(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(LedgerError, match=why) as caught:
        read_ledger(path)
    assert caught.value.exit_code == 2 and "export.csv" in str(caught.value)


def test_hostile_cells_are_data(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerow(["=HYPERLINK(\"x\")", "O'Neil & Sons <Jr>, {{ 7*7 }}", "", "11/01/2026", "99213",
                    "x" * 5000 + "<w:p/>", "100.00", "0", "0", "0", "", "1 Main St", "", "Springfield", "il", "62701"])
    ledger = read_ledger(path, today=STATEMENT_DATE)
    (line,) = ledger.lines
    assert line.account == "=HYPERLINK(\"x\")" and line.state == "IL" and len(line.description) == 120
    drafts, _ = build_drafts(ledger, statement_date=STATEMENT_DATE, minimum=Decimal("5"))
    assert drafts[0].guarantor == "{{ 7*7 }} O'Neil & Sons <Jr>"


# --- issuing ------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_issue_statements_once_per_account_and_date(tmp_path: Path, settings: Any) -> None:
    from frontdesk.db import open_database
    from frontdesk.db.letters_models import StatementDetail
    from frontdesk.db.models import AuditEvent, Statement, StoredObjectRow
    from frontdesk.letters.filing import issue_statements, void_statement
    from frontdesk.records import verify_storage
    from frontdesk.storage import open_storage

    truth = make_ledger(tmp_path / "ledger.csv", accounts=8, seed=5)
    ledger = read_ledger(tmp_path / "ledger.csv", today=STATEMENT_DATE)
    db, storage = open_database(settings), open_storage(settings)
    dry = issue_statements(db, storage, settings, ledger, statement_date=STATEMENT_DATE, dry_run=True)
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Statement)) == 0
    run = issue_statements(db, storage, settings, ledger, statement_date=STATEMENT_DATE)
    billed = {a for a, t in truth.items() if t.billed(500)}
    assert len(run.issued) == len(billed) == dry.would_issue and not run.render_failed
    with db.begin() as s:
        rows = {d.account: s.get(Statement, d.statement_id) for d in s.scalars(select(StatementDetail))}
        assert set(rows) == billed
        for account, stm in rows.items():
            assert stm is not None and stm.status == "pending"
            assert stm.amount_due_cents == truth[account].balance_cents
            assert stm.storage_key == f"statements/{stm.created_at:%Y/%m}/{stm.id}/statement.pdf"
            obj = s.get(StoredObjectRow, stm.storage_key)
            assert obj is not None and obj.state == "stored" and obj.statement_id == stm.id
            assert account not in stm.storage_key
        details = " ".join(e.detail or "" for e in s.scalars(select(AuditEvent)))
        assert not any(t.guarantor.split()[-1] in details for t in truth.values())
    assert verify_storage(db, storage).ok
    pdf = storage.get_bytes(next(iter(rows.values())).storage_key)  # type: ignore[union-attr,arg-type]
    account = next(iter(rows))
    import io

    import pdfplumber

    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        text = doc.pages[0].extract_text()
    assert account in text and truth[account].guarantor in text

    again = issue_statements(db, storage, settings, ledger, statement_date=STATEMENT_DATE)
    assert again.issued == [] and again.already_issued == len(billed)
    voided = next(iter(rows.values()))
    assert voided is not None and void_statement(db, voided.id)
    third = issue_statements(db, storage, settings, ledger, statement_date=STATEMENT_DATE)
    assert len(third.issued) == 1  # a voided statement's account can be billed again
    db.dispose()


def test_address_from_the_record_when_the_export_has_none(tmp_path: Path, settings: Any) -> None:
    from frontdesk.db import open_database
    from frontdesk.db.models import Patient, PatientField
    from frontdesk.letters.filing import issue_statements
    from frontdesk.records import match_key
    from frontdesk.storage import open_storage

    truth = make_ledger(tmp_path / "ledger.csv", accounts=6, seed=8, with_addresses=False, bad_accounts=0)
    ledger = read_ledger(tmp_path / "ledger.csv", today=STATEMENT_DATE)
    db, storage = open_database(settings), open_storage(settings)
    billed = [t for t in truth.values() if t.billed(500)]
    known = billed[0]
    line = next(ln for ln in ledger.lines if ln.account == known.account)
    last, first = (x.strip() for x in line.patient.split(",", 1))
    with db.begin() as s:
        p = Patient(match_key=match_key(first, last, line.patient_dob), first_name=first, last_name=last,  # type: ignore[arg-type]
                    date_of_birth=line.patient_dob)
        p.fields = [PatientField(key=f"patient.address.{k}", value=v) for k, v in
                    {"street": "9 Elm Street", "city": "Peoria", "state": "IL", "zip": "61602"}.items()]
        s.add(p)
    run = issue_statements(db, storage, settings, ledger, statement_date=STATEMENT_DATE, dry_run=True)
    assert run.would_issue == 1 and len(run.without_address) == len(billed) - 1
    assert all(label.startswith("row") for label in run.without_address)
    db.dispose()


def test_statements_cli_dry_run_and_bad_input(tmp_path: Path, fd_env: dict[str, str]) -> None:
    truth = make_ledger(tmp_path / "ledger.csv", accounts=5, seed=2)
    proc = run_cli("letters", "statements", str(tmp_path / "ledger.csv"), "--date", "2026-11-30", "--dry-run",
                   "--json", env=fd_env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["would_issue"] == sum(1 for t in truth.values() if t.billed(500)) and out["issued"] == []
    assert "row " in proc.stderr
    for t in truth.values():
        assert t.guarantor not in proc.stdout + proc.stderr and t.account not in proc.stdout + proc.stderr
    (tmp_path / "junk.csv").write_text("hello,world\n1,2\n")
    proc = run_cli("letters", "statements", str(tmp_path / "junk.csv"), env=fd_env)
    assert proc.returncode == 2 and "junk.csv" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("letters", "statements", str(tmp_path / "ledger.csv"), "--minimum", "lots", env=fd_env)
    assert proc.returncode != 0 and "--minimum" in proc.stderr

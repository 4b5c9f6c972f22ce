"""Patient statements from the billing system's ledger export.

The export is a CSV with one row per service line: guarantor account, patient, date of service,
CPT/HCPCS code, description, charge, insurance paid, adjustment and patient paid (column names vary by
billing system; common spellings are recognised). Optional columns give the guarantor's name and
mailing address; without them the address comes from the patient's record (matched by name and date of
birth). Every account whose balance is above the configured minimum gets one statement.

A bill must never be wrong, so an account with any row that cannot be read (a bad amount, a date that is
not a date, a missing account) gets no statement at all, and the problem is reported by row number and
column, never by value. Amounts are exact decimals, kept in cents in the records.

Aging: each service line's balance is aged by its date of service against the statement date (current
up to 30 days, 31-60, 61-90, over 90). Credits (lines with a negative balance, such as an overpayment)
are applied to the oldest amounts first, as payments usually are, so the buckets add up to the amount due.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from frontdesk.exceptions import InputFileError
from frontdesk.letters.addresses import clean_lines
from frontdesk.letters.kinds import letter_date, practice_block
from frontdesk.normalisers import parse_date
from frontdesk.settings import Settings

REQUIRED = ("account", "patient", "date_of_service", "code", "description", "charge", "insurance_paid",
            "adjustment", "patient_paid")
OPTIONAL = ("guarantor", "street", "street2", "city", "state", "zip", "patient_dob")
ALIASES: dict[str, tuple[str, ...]] = {
    "account": ("account", "account number", "account no", "account #", "acct", "acct #", "acct no",
                "guarantor account", "account id"),
    "patient": ("patient", "patient name", "pt name"),
    "date_of_service": ("date of service", "dos", "service date", "date"),
    "code": ("cpt/hcpcs", "cpt/hcpcs code", "cpt", "hcpcs", "code", "cpt code", "procedure code", "cpt/hcpcs code"),
    "description": ("description", "procedure description", "service description", "service", "desc"),
    "charge": ("charge", "charges", "charge amount", "billed", "amount billed"),
    "insurance_paid": ("insurance paid", "ins paid", "insurance payment", "insurance payments", "ins pmt"),
    "adjustment": ("adjustment", "adjustments", "adj", "write off", "write-off", "contractual adjustment"),
    "patient_paid": ("patient paid", "pt paid", "patient payment", "patient payments", "pat paid"),
    "guarantor": ("guarantor", "guarantor name", "responsible party"),
    "street": ("address", "address 1", "address1", "street", "guarantor address", "address line 1"),
    "street2": ("address 2", "address2", "address line 2"),
    "city": ("city",),
    "state": ("state", "st"),
    "zip": ("zip", "zip code", "postal code", "zipcode"),
    "patient_dob": ("patient dob", "dob", "date of birth", "birth date", "patient date of birth"),
}
LABELS = {"account": "account", "patient": "patient", "date_of_service": "date of service", "code": "code",
          "description": "description", "charge": "charge", "insurance_paid": "insurance paid",
          "adjustment": "adjustment", "patient_paid": "patient paid", "patient_dob": "patient date of birth"}
MONEY_LIMIT = Decimal("1000000")  # a single line above this is a broken export, not a doctor's bill
MAX_ROWS = 500_000
MAX_DESCRIPTION = 120
CENT = Decimal("0.01")
_AMOUNT = re.compile(r"^(?P<sign>-)?\s*\$?\s*(?P<sign2>-)?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)?(?P<cents>\.\d{1,2})?$")


class LedgerError(InputFileError):
    """The ledger export as a whole cannot be read (wrong columns, not a CSV)."""


def _key(header: str) -> str:
    return " ".join(re.sub(r"[_\-.]+", " ", header.replace("\ufeff", "")).lower().split())


def _columns(header: Sequence[str]) -> dict[str, int]:
    """Which column holds which field; the first column matching a field wins."""
    lookup = {_key(alias): name for name, aliases in ALIASES.items() for alias in aliases}
    found: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = lookup.get(_key(raw))
        if name is not None and name not in found:
            found[name] = index
    return found


def parse_money(text: str) -> Decimal:
    """``$1,234.56``, ``-12.00``, ``(12.00)`` (accounting negative) or blank (zero), to the cent.

    Commas are thousands separators only where they group three digits: ``125,00`` (a decimal comma)
    is refused rather than read as 12,500 dollars.
    """
    raw = text.strip()
    if not raw:
        return Decimal("0.00")
    negative = raw.startswith("(") and raw.endswith(")")
    if negative:
        raw = raw[1:-1].strip()
    match = _AMOUNT.match(raw)
    if match is None or not (match["whole"] or match["cents"]):
        raise ValueError("not an amount")
    signs = [bool(negative), bool(match["sign"]), bool(match["sign2"])]
    if sum(signs) > 1:
        raise ValueError("not an amount")
    value = Decimal((match["whole"] or "0").replace(",", "") + (match["cents"] or ""))
    if value >= MONEY_LIMIT:
        raise ValueError("not an amount in dollars and cents")
    return (-value if any(signs) else value).quantize(CENT)


def money(value: Decimal) -> str:
    """$1,234.56, or -$12.00 for a credit."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


@dataclass(frozen=True)
class LedgerLine:
    row: int
    account: str
    patient: str
    date_of_service: date
    code: str
    description: str
    charge: Decimal
    insurance_paid: Decimal
    adjustment: Decimal
    patient_paid: Decimal
    guarantor: str = ""
    street: str = ""
    street2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    patient_dob: date | None = None

    @property
    def balance(self) -> Decimal:
        return self.charge - self.insurance_paid - self.adjustment - self.patient_paid


@dataclass
class Ledger:
    """The readable lines of an export, the problems found (row numbers and columns only), and the
    accounts that must not be billed because some of their rows were unreadable."""

    lines: list[LedgerLine]
    problems: list[str]
    bad_accounts: set[str]
    sha256: str
    rows: int


def _text(cells: Sequence[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    if index is None or index >= len(cells):
        return ""
    return " ".join(cells[index].split())


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):  # billing systems on Windows still export cp1252
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("undecodable")


def read_ledger(path: Path, *, today: date | None = None) -> Ledger:
    """Read an export; LedgerError when it is not a ledger at all, problems for single rows."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerError(path, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if b"\x00" in data:
        raise LedgerError(path, "not a CSV text file (it contains binary data)")
    try:
        text = _decode(data)
    except ValueError:
        raise LedgerError(path, "not a text file in UTF-8 or Windows encoding") from None
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise LedgerError(path, "the file is empty or not a CSV export") from None
    columns = _columns(header)
    missing = [LABELS[name] for name in REQUIRED if name not in columns]
    if missing:
        raise LedgerError(path, "not a ledger export: no column for " + ", ".join(missing))

    lines: list[LedgerLine] = []
    problems: list[str] = []
    bad_accounts: set[str] = set()
    rows = 0
    try:
        for row_number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            rows += 1
            if rows > MAX_ROWS:
                raise LedgerError(path, f"more than {MAX_ROWS} rows; export one billing period at a time")
            account = _text(cells, columns, "account")
            errors: list[str] = []
            values: dict[str, Any] = {}
            if not account:
                errors.append("account")
            for name in ("charge", "insurance_paid", "adjustment", "patient_paid"):
                try:
                    values[name] = parse_money(_text(cells, columns, name))
                except ValueError:
                    errors.append(LABELS[name])
            service = parse_date(_text(cells, columns, "date_of_service"), today=today)
            if service is None:
                errors.append(LABELS["date_of_service"])
            dob_text = _text(cells, columns, "patient_dob")
            dob = parse_date(dob_text, today=today) if dob_text else None
            if dob_text and dob is None:
                errors.append(LABELS["patient_dob"])
            if not _text(cells, columns, "patient"):
                errors.append("patient")
            if errors:
                problems.append(f"row {row_number}: cannot read {', '.join(errors)}")
                if account:
                    bad_accounts.add(account)
                continue
            assert service is not None
            lines.append(LedgerLine(
                row=row_number, account=account, patient=_text(cells, columns, "patient"),
                date_of_service=service, code=_text(cells, columns, "code")[:12],
                description=_text(cells, columns, "description")[:MAX_DESCRIPTION],
                guarantor=_text(cells, columns, "guarantor"), street=_text(cells, columns, "street"),
                street2=_text(cells, columns, "street2"), city=_text(cells, columns, "city"),
                state=_text(cells, columns, "state").upper(), zip=_text(cells, columns, "zip"),
                patient_dob=dob, **values))
    except csv.Error as exc:
        raise LedgerError(path, f"not a well-formed CSV file near line {reader.line_num} "
                                f"({str(exc).split(':')[0]})") from None
    return Ledger(lines, problems, bad_accounts, hashlib.sha256(data).hexdigest(), rows)


# --- statements ----------------------------------------------------------------------------------------

BUCKETS = ("current", "days_31_60", "days_61_90", "over_90")


def bucket_of(age_days: int) -> int:
    """0 current (up to 30 days, or dated after the statement), 1: 31-60, 2: 61-90, 3: over 90."""
    if age_days <= 30:
        return 0
    if age_days <= 60:
        return 1
    if age_days <= 90:
        return 2
    return 3


def aging(lines: Iterable[LedgerLine], statement_date: date) -> dict[str, Decimal]:
    """What is owed by age; credits pay the oldest amounts first, so the buckets sum to the balance."""
    owed = [Decimal("0.00")] * 4
    credit = Decimal("0.00")
    for line in lines:
        balance = line.balance
        if balance > 0:
            owed[bucket_of((statement_date - line.date_of_service).days)] += balance
        else:
            credit -= balance
    for index in reversed(range(4)):
        used = min(credit, owed[index])
        owed[index] -= used
        credit -= used
    if credit > 0:  # more credit than debt: the account is in credit, shown as a negative current amount
        owed[0] -= credit
    return dict(zip(BUCKETS, owed, strict=True))


@dataclass
class StatementDraft:
    """One guarantor account's statement before it is recorded: the numbers and where it goes."""

    account: str
    lines: list[LedgerLine]
    guarantor: str
    address_lines: list[str]
    totals: dict[str, Decimal]
    aging: dict[str, Decimal]
    amount_due: Decimal
    address_from: str  # "ledger" | "record" | "none"
    patient_keys: list[tuple[str, date | None]] = field(default_factory=list)

    @property
    def rows(self) -> list[int]:
        return [line.row for line in self.lines]

    def context(self, settings: Settings, *, statement_date: date, reference: str,
                language: str = "en") -> dict[str, Any]:
        """What ``patient_statement.docx`` is rendered with (and what the statement row keeps), dates and
        amounts written as ``language`` writes them (frontdesk/language.py)."""
        from frontdesk import language as lang

        if language != lang.DEFAULT:
            return {**self.context(settings, statement_date=statement_date, reference=reference),
                    "language": language,
                    "statement_date": lang.letter_date(statement_date, language),
                    "due_date": lang.letter_date(statement_date + timedelta(days=settings.statements.due_days),
                                                 language)}
        stm = settings.statements
        remit = ({"name": stm.remit_to.name, "address_lines": list(stm.remit_to.address_lines)}
                 if stm.remit_to else {"name": settings.practice.name,
                                       "address_lines": list(settings.practice.address_lines)})
        return {
            "practice": practice_block(settings),
            "remit_to": remit,
            "guarantor": {"full_name": self.guarantor, "address_lines": list(self.address_lines)},
            "account": self.account,
            "statement_date": letter_date(statement_date),
            "due_date": letter_date(statement_date + timedelta(days=stm.due_days)),
            "reference": reference,
            "lines": [{"date": f"{line.date_of_service:%m/%d/%Y}", "patient": line.patient, "code": line.code,
                       "description": line.description, "charge": money(line.charge),
                       "insurance_paid": money(line.insurance_paid), "adjustment": money(line.adjustment),
                       "patient_paid": money(line.patient_paid), "balance": money(line.balance)}
                      for line in self.lines],
            "totals": {name: money(value) for name, value in self.totals.items()},
            "aging": {name: money(value) for name, value in self.aging.items()},
            "amount_due": money(self.amount_due),
            "payment_methods": list(stm.payment_methods),
        }


def _address_from_ledger(lines: Sequence[LedgerLine]) -> tuple[str, list[str]] | None:
    """The guarantor's name and address as the export gives them (the first row that has a street)."""
    for line in lines:
        if line.street:
            city_line = " ".join(x for x in (f"{line.city}," if line.city else "", line.state, line.zip) if x)
            name = line.guarantor or line.patient
            return _display_name(name), clean_lines([line.street, line.street2, city_line])
    return None


def _display_name(name: str) -> str:
    """Billing systems write "LAST, FIRST"; an envelope reads "First Last"."""
    if "," in name:
        last, _, first = name.partition(",")
        if first.strip() and last.strip():
            name = f"{first.strip()} {last.strip()}"
    return name if not name.isupper() else name.title()


def build_drafts(ledger: Ledger, *, statement_date: date, minimum: Decimal) -> tuple[list[StatementDraft], int]:
    """Drafts for every readable account owing more than ``minimum``; also how many were below it."""
    by_account: dict[str, list[LedgerLine]] = {}
    for line in ledger.lines:
        by_account.setdefault(line.account, []).append(line)
    drafts, below = [], 0
    for account, lines in by_account.items():
        if account in ledger.bad_accounts:
            continue
        lines.sort(key=lambda ln: (ln.date_of_service, ln.row))
        totals = {
            "charges": sum((ln.charge for ln in lines), Decimal("0.00")),
            "insurance_paid": sum((ln.insurance_paid for ln in lines), Decimal("0.00")),
            "adjustments": sum((ln.adjustment for ln in lines), Decimal("0.00")),
            "patient_paid": sum((ln.patient_paid for ln in lines), Decimal("0.00")),
        }
        balance = totals["charges"] - totals["insurance_paid"] - totals["adjustments"] - totals["patient_paid"]
        totals["balance"] = balance
        if balance <= minimum:
            below += 1
            continue
        found = _address_from_ledger(lines)
        name, address = found if found else (_display_name(lines[0].guarantor or lines[0].patient), [])
        keys = list(dict.fromkeys((ln.patient, ln.patient_dob) for ln in lines))
        drafts.append(StatementDraft(account, lines, name, address, totals, aging(lines, statement_date), balance,
                                     "ledger" if found else "none", keys))
    drafts.sort(key=lambda d: d.lines[0].row)
    return drafts, below


__all__ = ["BUCKETS", "Ledger", "LedgerError", "LedgerLine", "StatementDraft", "aging", "bucket_of", "build_drafts",
           "cents", "money", "parse_money", "read_ledger"]

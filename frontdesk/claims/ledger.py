"""The visit ledger a claim is built from: the billing system's export of a day's service lines.

One CSV row per service line: the visit (claim) it belongs to, the patient's Frontdesk record id, date
of service, CPT/HCPCS code, modifiers, units, charge and the ICD-10-CM diagnosis codes that line is for
(separated by spaces, commas or semicolons; the claim's diagnosis list is their union, in order of first
appearance, and each line points at its own). Problems name the row and column, never the value.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from frontdesk.claims.x12 import read_capped
from frontdesk.exceptions import InputFileError

MAX_FILE_BYTES = 20 * 1024 * 1024
REQUIRED = ("claim", "patient_id", "date_of_service", "code", "charge", "diagnoses")
ALIASES: dict[str, tuple[str, ...]] = {
    "claim": ("claim", "claim id", "visit", "visit id", "encounter", "encounter id"),
    "patient_id": ("patient id", "record id", "frontdesk id", "patient record"),
    "date_of_service": ("date of service", "dos", "service date"),
    "code": ("cpt", "cpt/hcpcs", "hcpcs", "code", "procedure code", "cpt code"),
    "modifiers": ("modifiers", "modifier", "mod"),
    "units": ("units", "unit", "qty", "quantity"),
    "charge": ("charge", "charges", "amount", "billed"),
    "diagnoses": ("diagnoses", "diagnosis", "icd10", "icd-10", "icd 10", "dx", "diagnosis codes"),
    "place_of_service": ("place of service", "pos"),
    "rendering_npi": ("rendering npi", "provider npi", "rendering provider npi"),
    "prior_authorization": ("prior authorization", "authorization", "prior auth"),
    "description": ("description", "procedure description", "service description", "service"),
}


class ClaimLedgerError(InputFileError):
    """The ledger cannot be read; every bad row is listed (row and column, no values)."""


@dataclass
class ServiceLine:
    row: int
    date_of_service: date
    code: str
    modifiers: list[str]
    units: Decimal
    charge: Decimal
    diagnoses: list[str]
    description: str = ""  # optional column: the service in plain words (a self-pay invoice prints it)


@dataclass
class Visit:
    """One claim's worth of service lines for one patient."""

    claim_id: str
    patient_id: str
    lines: list[ServiceLine] = field(default_factory=list)
    place_of_service: str = ""
    rendering_npi: str = ""
    prior_authorization: str = ""

    @property
    def diagnoses(self) -> list[str]:
        out: list[str] = []
        for line in self.lines:
            for d in line.diagnoses:
                if d not in out:
                    out.append(d)
        return out

    @property
    def total(self) -> Decimal:
        return sum((line.charge for line in self.lines), Decimal("0.00"))

    @property
    def first_date(self) -> date:
        return min(line.date_of_service for line in self.lines)


def _key(h: str) -> str:
    return " ".join(re.sub(r"[_\-./#]+", " ", h.replace("\ufeff", "")).lower().split())


def normalise_icd(code: str) -> str:
    """'e11.9' -> 'E119': claims carry ICD-10-CM codes without the dot."""
    return code.strip().upper().replace(".", "")


def _date(v: str) -> date:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y"):
        try:
            return datetime.strptime(v.strip(), fmt).date()
        except ValueError:
            continue
    raise ValueError("not a date (YYYY-MM-DD or MM/DD/YYYY)")


def read_claim_ledger(path: Path, *, label: str | None = None) -> list[Visit]:
    where = label or Path(path).name
    try:
        raw = read_capped(path, MAX_FILE_BYTES, "a visit ledger")
    except ValueError as exc:
        raise ClaimLedgerError(where, str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ClaimLedgerError(where, "not a UTF-8 CSV file") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ClaimLedgerError(where, "empty file")
    lookup = {_key(a): name for name, aliases in ALIASES.items() for a in aliases}
    columns: dict[str, int] = {}
    for i, h in enumerate(rows[0]):
        name = lookup.get(_key(h))
        if name and name not in columns:
            columns[name] = i
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ClaimLedgerError(where, f"missing column(s): {', '.join(missing)}")
    problems: list[str] = []
    visits: dict[str, Visit] = {}
    for n, cells in enumerate(rows[1:], 2):
        if not any(c.strip() for c in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = columns.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        bad: list[str] = []
        for name in REQUIRED:
            if not cell(name):
                bad.append(f"row {n}, column '{name}': empty")
        try:
            dos = _date(cell("date_of_service")) if cell("date_of_service") else None
        except ValueError as exc:
            bad.append(f"row {n}, column 'date_of_service': {exc}")
            dos = None
        try:
            charge = Decimal(cell("charge").replace("$", "").replace(",", "") or "0").quantize(Decimal("0.01"))
            if charge <= 0 or charge >= Decimal("100000"):
                raise InvalidOperation
        except InvalidOperation:
            bad.append(f"row {n}, column 'charge': not an amount above zero")
            charge = Decimal("0")
        try:
            units = Decimal(cell("units") or "1")
            if units <= 0 or units > 999:
                raise InvalidOperation
        except InvalidOperation:
            bad.append(f"row {n}, column 'units': not a number of units (1-999)")
            units = Decimal("1")
        if bad:
            problems.extend(bad)
            continue
        assert dos is not None
        claim_id = cell("claim")
        v = visits.get(claim_id)
        if v is None:
            v = visits[claim_id] = Visit(claim_id, cell("patient_id"), place_of_service=cell("place_of_service"),
                                         rendering_npi=cell("rendering_npi"),
                                         prior_authorization=cell("prior_authorization"))
        elif v.patient_id != cell("patient_id"):
            problems.append(f"row {n}, column 'patient_id': claim {claim_id} already belongs to another patient")
            continue
        dx = [normalise_icd(d) for d in re.split(r"[\s,;|]+", cell("diagnoses")) if d.strip()]
        mods = [m.upper() for m in re.split(r"[\s,;:|]+", cell("modifiers")) if m.strip()]
        v.lines.append(ServiceLine(n, dos, cell("code").upper(), mods, units, charge, dx,
                                   description=cell("description")[:120]))
    if problems:
        raise ClaimLedgerError(where, f"{len(problems)} problem(s):\n  " + "\n  ".join(problems[:50]))
    if not visits:
        raise ClaimLedgerError(where, "no service lines")
    return list(visits.values())

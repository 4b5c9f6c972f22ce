"""What the checks need to know about a patient, independent of where the record is kept.

The rules read a :class:`PatientRecord`: the current value of each vocabulary field and the latest intake
form. :class:`RecordSource` finds candidate records for a day's appointments; the records database
provides one (:mod:`frontdesk.checks.store`), and tests and scripts can hand in records from memory with
:class:`InMemoryRecords`. Keeping the interface this small means the rules never touch SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from frontdesk.billable import as_date

FieldValue = str | bool | None


@dataclass(frozen=True)
class IntakeOnFile:
    """The latest intake form of a patient, as far as the checks care.

    ``signed_on`` is the date written next to the signature; when the patient left it blank, the date
    the form was received stands in for it (it cannot have been signed later than it arrived).
    """

    document_id: str
    received_on: date
    signed: bool
    hipaa_acknowledged: bool
    signed_on: date | None = None
    in_review: bool = False  # the reading waits for a person (a name may be misread until then)

    @property
    def dated(self) -> date:
        return self.signed_on or self.received_on


@dataclass(frozen=True)
class CoverageOnFile:
    """The payer's latest answer about a patient's coverage (an X12 271, see frontdesk/claims)."""

    status: str  # active | inactive | not_found | rejected
    checked_on: date
    plan_name: str | None = None
    copay: Decimal | None = None
    deductible_remaining: Decimal | None = None
    reasons: tuple[str, ...] = ()


@dataclass
class PatientRecord:
    patient_id: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    mrn: str | None = None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    intake: IntakeOnFile | None = None
    coverage: CoverageOnFile | None = None  # the latest eligibility answer, when one was asked for
    # Issue 16: form id -> the date of the patient's latest signed copy of that form (forms besides
    # registration, as the form rules in checks.yaml ask for them).
    signed_forms: dict[str, date] = field(default_factory=dict)

    def value(self, key: str) -> FieldValue:
        """Current value of a vocabulary field; the identity columns answer for the patient.* keys."""
        if key == "patient.first_name":
            return self.first_name
        if key == "patient.last_name":
            return self.last_name
        if key == "patient.date_of_birth" and key not in self.fields:
            return self.date_of_birth.isoformat() if self.date_of_birth else None
        return self.fields.get(key)

    def text(self, key: str) -> str:
        v = self.value(key)
        return v.strip() if isinstance(v, str) else ""


class RecordSource(Protocol):
    """Where patient records come from. ``candidates`` may return more than asked for; never less."""

    def candidates(self, mrns: set[str], dates_of_birth: set[date]) -> list[PatientRecord]:
        """Every record whose MRN is in ``mrns`` or whose date of birth is in ``dates_of_birth``."""
        ...


class InMemoryRecords:
    """Records held in memory: for tests, and for callers that loaded records some other way."""

    def __init__(self, records: Iterable[PatientRecord]) -> None:
        self.records = list(records)

    def candidates(self, mrns: set[str], dates_of_birth: set[date]) -> list[PatientRecord]:
        return [r for r in self.records if (r.mrn and r.mrn in mrns) or r.date_of_birth in dates_of_birth]


def record_from_fields(patient_id: str, values: Mapping[str, FieldValue], *, mrn: str | None = None,
                       intake: IntakeOnFile | None = None) -> PatientRecord:
    """Build a record from vocabulary-keyed values (what an intake form or the patient_fields table holds)."""
    first = values.get("patient.first_name")
    last = values.get("patient.last_name")
    return PatientRecord(
        patient_id=patient_id,
        first_name=first if isinstance(first, str) else "",
        last_name=last if isinstance(last, str) else "",
        date_of_birth=as_date(values.get("patient.date_of_birth")),
        mrn=mrn,
        fields=dict(values),
        intake=intake,
    )

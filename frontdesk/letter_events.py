"""Letters queued by events: which event queues each kind, and the rule that keeps it from going twice.

``config/letters.yaml`` names, for every kind of letter, its trigger and its do-not-send-twice rule.
The records call :func:`on_intake_filed` when an intake form is filed (by the reader or after a
person's review); it queues the welcome letter (first intake of a new patient) and the incomplete-intake
letter (required answers still blank after review) as pending letters, which the next mail batch renders
from their stored context. The other kinds are queued where their events happen (missing insurance by
the intake pipeline, reminders by the pre-visit check, statements from the ledger), and ask
:func:`letter_enabled` whether the practice wants them.

This module sits beside ``records`` and ``letters`` and imports neither (records imports it), so there
is no import circle between filing and letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from frontdesk import audit
from frontdesk.db.models import Document, Letter, Patient
from frontdesk.exceptions import ConfigError
from frontdesk.models import ExtractionResult
from frontdesk.states import PieceStatus

WELCOME = "welcome"
INCOMPLETE_INTAKE = "incomplete_intake"

#: What each kind can be triggered by, and which do-not-send-twice rules it can keep.
SUPPORTED: dict[str, tuple[set[str], set[str]]] = {
    WELCOME: ({"first_intake"}, {"patient", "document"}),
    INCOMPLETE_INTAKE: ({"blank_after_review"}, {"document", "patient"}),
    "missing_insurance": ({"insurance_missing"}, {"document"}),
    "appointment_reminder": ({"previsit_gap"}, {"appointment_gap"}),
    "patient_statement": ({"ledger_balance"}, {"account_statement_date"}),
    "self_pay_invoice": ({"self_pay_visit"}, {"visit"}),
}

#: Flag codes that mean "a required answer is blank or not readable".
_BLANK_CODES = {"missing", "invalid", "low_confidence"}


class LetterEvent(BaseModel):
    kind: str = ""
    trigger: str
    once_per: Literal["patient", "document", "appointment_gap", "account_statement_date", "visit"]
    enabled: bool = True

    @model_validator(mode="after")
    def _supported(self) -> LetterEvent:
        triggers, rules = SUPPORTED[self.kind]
        if self.trigger not in triggers:
            raise ValueError(f"trigger {self.trigger!r} is not one of {sorted(triggers)}")
        if self.once_per not in rules:
            raise ValueError(f"once_per {self.once_per!r} is not one of {sorted(rules)}")
        return self


@dataclass(frozen=True)
class LetterEvents:
    events: dict[str, LetterEvent]

    def get(self, kind: str) -> LetterEvent | None:
        event = self.events.get(kind)
        return event if event is not None and event.enabled else None


def default_file() -> Path:
    """``FRONTDESK_LETTERS_FILE``, else ``config/letters.yaml`` in Frontdesk's home folder."""
    import os

    from frontdesk.settings import home

    given = os.environ.get("FRONTDESK_LETTERS_FILE")
    return Path(given) if given else home() / "config" / "letters.yaml"


def load_letter_events(path: Path | None = None) -> LetterEvents:
    """Read and check ``config/letters.yaml``. Without the file every kind keeps its shipped rule."""
    path = Path(path) if path is not None else default_file()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _load(path, mtime)


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> LetterEvents:
    data: Any = {}
    if mtime:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read letters file ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("letters", {}), dict):
        raise ConfigError(f"{path}: expected a 'letters:' mapping of kinds")
    given = data.get("letters", {}) or {}
    events: dict[str, LetterEvent] = {}
    for kind, (triggers, rules) in SUPPORTED.items():
        entry = given.get(kind, {}) or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: letters.{kind}: expected trigger, once_per, enabled")
        entry = {"trigger": sorted(triggers)[0], "once_per": sorted(rules)[0] if kind != WELCOME else "patient",
                 **entry, "kind": kind}
        try:
            events[kind] = LetterEvent.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"{path}: letters.{kind}: {first['msg']}") from None
    unknown = sorted(set(given) - set(SUPPORTED))
    if unknown:
        raise ConfigError(f"{path}: letters: unknown kind {unknown[0]!r} (known: {', '.join(SUPPORTED)})")
    return LetterEvents(events)


def letter_enabled(kind: str, path: Path | None = None) -> bool:
    """Whether the practice wants letters of ``kind`` queued at all."""
    return load_letter_events(path).get(kind) is not None


# --- intake forms ----------------------------------------------------------------------------------------


def _address_lines(patient: Patient) -> list[str] | None:
    parts = {k: patient.value(f"patient.address.{k}") for k in ("street", "city", "state", "zip")}
    if not all(isinstance(v, str) and v.strip() for v in parts.values()):
        return None
    return [str(parts["street"]), f"{parts['city']}, {parts['state']} {parts['zip']}"]


def _context(patient: Patient, doc: Document, today: date, address: list[str]) -> dict[str, Any]:
    from frontdesk.language import PREFERRED_LANGUAGE_KEY, language_of, letter_date
    from frontdesk.settings import default_settings

    practice = default_settings().practice
    language = language_of(patient.value(PREFERRED_LANGUAGE_KEY))
    return {
        "language": language,
        "practice": {"name": practice.name, "address_lines": list(practice.address_lines), "phone": practice.phone},
        "letter_date": letter_date(today, language),
        "patient": {"full_name": f"{patient.first_name} {patient.last_name}".strip(),
                    "first_name": patient.first_name or "Patient", "address_lines": address},
        "reference": doc.id.upper(),
    }


def _already(session: Session, kind: str, rule: str, patient_id: str, document_id: str) -> bool:
    q = select(Letter.id).where(Letter.kind == kind, Letter.status != PieceStatus.VOID)
    q = q.where(Letter.patient_id == patient_id) if rule == "patient" else q.where(Letter.document_id == document_id)
    return session.scalars(q.limit(1)).first() is not None


def _queue(session: Session, kind: str, patient: Patient, doc: Document, context: dict[str, Any],
           detail: str) -> str | None:
    try:
        with session.begin_nested():
            letter = Letter(kind=kind, status=PieceStatus.PENDING, patient_id=patient.id, document_id=doc.id, context=context)
            session.add(letter)
            session.flush()
    except IntegrityError:  # the same form's letter of this kind, queued a moment ago by another process
        return None
    audit.record(session, "create", "letter", letter.id, patient_id=patient.id, detail=f"{kind}; {detail}")
    return letter.id


def blank_items(result: ExtractionResult, labels: dict[str, str] | None = None) -> list[str]:
    """Required answers still blank or unreadable, as the form calls them (insurance has its own letter)."""
    items: list[str] = []
    for f in result.flags:
        if f.code in _BLANK_CODES and f.field and not f.field.startswith("insurance."):
            label = (labels or {}).get(f.field) or f.message.split(":")[0].removesuffix(" is missing")
            if label not in items:
                items.append(label)
    return items


def on_intake_filed(session: Session, doc: Document, result: ExtractionResult, *, reviewed: bool,
                    today: date | None = None, labels: dict[str, str] | None = None) -> list[str]:
    """Queue the letters an intake form's filing calls for; returns the new letters' ids.

    ``reviewed``: this reading is a person's (the review), so what is still blank stays blank."""
    if result.document_type != "intake_form" or doc.patient_id is None or doc.outcome == "failed":
        return []
    events = load_letter_events()
    patient = session.get(Patient, doc.patient_id)
    if patient is None:
        return []
    address = _address_lines(patient)
    if address is None:
        return []  # a letter cannot reach a patient without an address: the worklist asks at the desk
    today = today or date.today()
    queued: list[str] = []
    welcome = events.get(WELCOME)
    if welcome is not None and (doc.outcome == "filed" or reviewed):  # a person has seen the name by now
        earlier = session.scalars(select(Document.id).where(
            Document.patient_id == patient.id, Document.document_type == "intake_form", Document.id != doc.id,
            Document.outcome == "filed", Document.received_at < doc.received_at).limit(1)).first()
        if earlier is None and not _already(session, WELCOME, welcome.once_per, patient.id, doc.id):
            made = _queue(session, WELCOME, patient, doc, _context(patient, doc, today, address), "first intake")
            if made:
                queued.append(made)
    incomplete = events.get(INCOMPLETE_INTAKE)
    items = blank_items(result, labels)
    if incomplete is not None and reviewed and items \
            and not _already(session, INCOMPLETE_INTAKE, incomplete.once_per, patient.id, doc.id):
        context = {**_context(patient, doc, today, address), "missing_items": items}
        made = _queue(session, INCOMPLETE_INTAKE, patient, doc, context, f"{len(items)} items")
        if made:
            queued.append(made)
    return queued


__all__ = ["INCOMPLETE_INTAKE", "SUPPORTED", "WELCOME", "LetterEvent", "LetterEvents", "blank_items",
           "letter_enabled", "load_letter_events", "on_intake_filed"]

"""Rendering, converting and filing letters and statements, with their records.

Every object is recorded before it is written and confirmed after (the same three steps as intake, see
:mod:`frontdesk.records`), under opaque keys:

* a letter: ``letters/YYYY/MM/<letter id>/<kind>.pdf``
* a statement: ``statements/YYYY/MM/<statement id>/statement.pdf``

(the month is the one the letter or statement was created in, so a retry writes the same key).

Rendering runs for many pieces at once: the .docx files are filled one after another (a few
milliseconds each) and converted in one LibreOffice batch, so a hundred letters cost a few LibreOffice
start-ups, not a hundred.

Writers of letters and statements take a lease (:func:`letters_lock`) so a scheduled mail run and a
person at the CLI never render or batch the same pieces at once.
"""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from frontdesk import audit, progress
from frontdesk.convert import BatchConversionError, default_workers, docx_to_pdf
from frontdesk.db import Database
from frontdesk.db.checks_models import PatientIdentifier
from frontdesk.db.letters_models import LetterLock, StatementDetail
from frontdesk.db.models import Letter, Patient, Statement, utcnow
from frontdesk.exceptions import ConversionError, FrontdeskError, TemplateError
from frontdesk.identity import match_key
from frontdesk.language import PREFERRED_LANGUAGE_KEY, context_language, language_of, template_for
from frontdesk.letters.kinds import KINDS, STATEMENT_KIND, render_context
from frontdesk.letters.statements import Ledger, StatementDraft, build_drafts, cents
from frontdesk.models import StoredObject
from frontdesk.objects import file_object as file_object
from frontdesk.objects import filed_bytes as filed_bytes
from frontdesk.rendering import render_docx
from frontdesk.settings import Settings
from frontdesk.states import PieceStatus, advance
from frontdesk.storage import Storage, sha256_bytes

log = logging.getLogger("frontdesk.letters")


class MailBusyError(FrontdeskError):
    """Another run is rendering or batching mail right now; try again when it has finished."""


# --- objects with records -----------------------------------------------------------------------------


def month_key(area: str, object_id: str, created: datetime, name: str) -> str:
    return f"{area}/{created:%Y}/{created:%m}/{object_id}/{name}"


# --- the lease -----------------------------------------------------------------------------------------


@contextmanager
def letters_lock(db: Database, settings: Settings, name: str = "mail") -> Iterator[str]:
    """Hold the named lease for the block; MailBusyError if a live run holds it. A run that crashed
    leaves a lease that expires after ``mail.lock_minutes``."""
    token = secrets.token_hex(16)
    now = utcnow()
    try:
        with db.begin() as s:
            # FOR UPDATE: two runs finding the same expired lease take turns (PostgreSQL; SQLite's
            # BEGIN IMMEDIATE already serialises), so only one of them renews it.
            lock = s.scalars(select(LetterLock).where(LetterLock.name == name).with_for_update()).first()
            if lock is not None and lock.expires_at > now:
                raise MailBusyError(
                    f"another mail or statement run has been working since {lock.acquired_at:%H:%M} UTC; "
                    "try again when it has finished")
            if lock is None:
                lock = LetterLock(name=name, holder=token, acquired_at=now,
                                  expires_at=now + timedelta(minutes=settings.mail.lock_minutes))
                s.add(lock)
            else:
                lock.holder, lock.acquired_at = token, now
                lock.expires_at = now + timedelta(minutes=settings.mail.lock_minutes)
    except IntegrityError:  # two runs inserted the row at once (PostgreSQL): the other one won
        raise MailBusyError("another mail or statement run has just started; try again when it has finished") \
            from None
    try:
        yield token
    finally:
        with db.begin() as s:
            s.execute(delete(LetterLock).where(LetterLock.name == name, LetterLock.holder == token))


# --- rendering -----------------------------------------------------------------------------------------


@dataclass
class RenderJob:
    """One piece to render: its id (used for file names, so no patient data), kind and stored data."""

    piece_id: str
    kind: str
    context: dict[str, Any]


@dataclass
class RenderResult:
    pdfs: dict[str, bytes] = field(default_factory=dict)
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # piece id -> (code, reason)


def render_pdfs(jobs: Sequence[RenderJob], settings: Settings) -> RenderResult:
    """Fill each piece's template and convert them all in one LibreOffice batch. Nothing is filed.

    A piece whose template fails (a variable missing from its data, a refused template) is reported
    with the template's own message, which names the template and the variable, never a value.
    """
    result = RenderResult()
    if not jobs:
        return result
    with tempfile.TemporaryDirectory(prefix="frontdesk-render-") as tmp:
        folder = Path(tmp)
        docs: dict[str, Path] = {}
        with progress.step("writing letters", len(jobs)) as writing:
            for job in jobs:
                writing.advance()
                if job.kind not in KINDS:
                    result.failed[job.piece_id] = ("template.unknown", f"no letter template for kind {job.kind!r}")
                    continue
                template = template_for(settings.letters_dir, job.kind, context_language(job.context))
                try:
                    docs[job.piece_id] = render_docx(template, render_context(job.context, settings),
                                                     folder / f"{job.piece_id}.docx")
                except TemplateError as exc:
                    result.failed[job.piece_id] = ("template.error", str(exc))
        if not docs:
            return result
        by_doc = {path.resolve(): piece for piece, path in docs.items()}
        workers = settings.letters.convert_workers or default_workers()
        timeout = settings.letters.convert_timeout_seconds
        try:
            pdfs = docx_to_pdf(list(docs.values()), folder / "pdf", timeout=timeout, workers=workers)
        except BatchConversionError as exc:
            for doc, reason in exc.failed.items():
                result.failed[by_doc[Path(doc).resolve()]] = ("pdf.conversion", reason)
            pdfs = exc.converted
        except ConversionError as exc:  # LibreOffice missing altogether
            for piece in docs:
                result.failed[piece] = ("pdf.conversion", str(exc))
            return result
        for pdf in pdfs:
            piece = pdf.stem
            if piece in docs:
                result.pdfs[piece] = pdf.read_bytes()
    return result


def file_letter(db: Database, storage: Storage, letter_id: str, pdf: bytes) -> StoredObject:
    """File a rendered letter and point its row at it."""
    with db.begin() as s:
        letter = s.get(Letter, letter_id)
        assert letter is not None
        key = month_key("letters", letter.id, letter.created_at, f"{letter.kind}.pdf")
        letter.storage_key, letter.sha256 = key, sha256_bytes(pdf)
        patient_id = letter.patient_id
    obj = file_object(db, storage, pdf, key, role="letter", patient_id=patient_id, letter_id=letter_id)
    with db.begin() as s:
        letter = s.get(Letter, letter_id)
        assert letter is not None
        letter.sha256 = obj.sha256
        audit.record(s, "update", "letter", letter_id, patient_id=patient_id, detail="filed")
    return obj


def file_statement(db: Database, storage: Storage, statement_id: str, pdf: bytes) -> StoredObject:
    with db.begin() as s:
        stm = s.get(Statement, statement_id)
        assert stm is not None
        key = month_key("statements", stm.id, stm.created_at, "statement.pdf")
        stm.storage_key, stm.sha256 = key, sha256_bytes(pdf)
        patient_id = stm.patient_id
    obj = file_object(db, storage, pdf, key, role="statement", patient_id=patient_id, statement_id=statement_id)
    with db.begin() as s:
        stm = s.get(Statement, statement_id)
        assert stm is not None
        stm.sha256 = obj.sha256
        audit.record(s, "update", "statement", statement_id, patient_id=patient_id, detail="filed")
    return obj


def render_and_file(db: Database, storage: Storage, settings: Settings,
                    jobs: Sequence[RenderJob]) -> RenderResult:
    """Render pieces and file each PDF with its letter or statement."""
    result = render_pdfs(jobs, settings)
    with progress.step("filing letters", len(result.pdfs)) as filing:
        for job in jobs:
            pdf = result.pdfs.get(job.piece_id)
            if pdf is None:
                continue
            if job.kind == STATEMENT_KIND:
                file_statement(db, storage, job.piece_id, pdf)
            else:
                file_letter(db, storage, job.piece_id, pdf)
            filing.advance()
    if result.failed:
        log.warning("%d piece(s) could not be rendered: %s", len(result.failed),
                    ", ".join(f"{piece} ({code})" for piece, (code, _) in result.failed.items()))
    return result


# --- statements ------------------------------------------------------------------------------------------


@dataclass
class StatementRun:
    """What ``frontdesk letters statements`` did. Ids, counts and row numbers only."""

    statement_date: date
    ledger_rows: int
    accounts: int
    issued: list[str] = field(default_factory=list)
    already_issued: int = 0
    below_minimum: int = 0
    without_address: list[str] = field(default_factory=list)  # "rows 4-7" of accounts with no address
    problems: list[str] = field(default_factory=list)
    render_failed: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    would_issue: int = 0  # a dry run's count of statements it would record
    # Every account above the minimum that gets no statement, with the reason: {"rows": ..., "reason": ...}.
    unbillable: list[dict[str, str]] = field(default_factory=list)
    matched_by_account: int = 0  # accounts found through an account number remembered from an earlier run

    def as_dict(self) -> dict[str, Any]:
        return {"statement_date": self.statement_date.isoformat(), "ledger_rows": self.ledger_rows,
                "accounts": self.accounts, "issued": self.issued, "already_issued": self.already_issued,
                "below_minimum": self.below_minimum, "without_address": self.without_address,
                "problems": self.problems, "render_failed": self.render_failed, "dry_run": self.dry_run,
                "would_issue": self.would_issue, "unbillable": self.unbillable,
                "matched_by_account": self.matched_by_account}


#: PatientIdentifier.system for the billing system's account number, remembered once an account is matched.
LEDGER_ACCOUNT = "ledger_account"


def _account_value(account: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", account.upper())[:100]


def _rows_label(rows: Sequence[int]) -> str:
    return f"row {rows[0]}" if len(rows) == 1 else f"rows {min(rows)}-{max(rows)}"


def _patient_of(db: Database, draft: StatementDraft, *, remember: bool = True,
                run: StatementRun | None = None) -> tuple[str, str, list[str], str] | None:
    """The account's patient: by the account number remembered from an earlier match, else the first
    found by name and date of birth, whose account number is then remembered (so a later export whose
    rows lack the date of birth still finds the record). Returns (id, name, address); the address is
    empty when the record has no complete one. The lookup is a read of the record: audited."""
    account = _account_value(draft.account)
    with db.begin() as s:
        patient: Patient | None = None
        known = s.scalars(select(PatientIdentifier).where(PatientIdentifier.system == LEDGER_ACCOUNT,
                                                          PatientIdentifier.value == account)).first() if account else None
        if known is not None:
            patient = s.get(Patient, known.patient_id)
            if patient is not None and run is not None:
                run.matched_by_account += 1
        for name, dob in draft.patient_keys if patient is None else ():
            if dob is None:
                continue
            if "," in name:
                last, _, first = name.partition(",")
            else:
                first, _, last = name.rpartition(" ")
            patient = s.scalars(select(Patient).where(Patient.match_key == match_key(first, last, dob))
                                .order_by(Patient.created_at, Patient.id).limit(1)).first()
            if patient is not None:
                if remember and account and known is None:
                    s.add(PatientIdentifier(patient_id=patient.id, system=LEDGER_ACCOUNT, value=account))
                break
        if patient is not None:
            audit.record(s, "read", "patient", patient.id, patient_id=patient.id, detail="statement")
            parts = {k: patient.value(f"patient.address.{k}") for k in ("street", "city", "state", "zip")}
            address = ([str(parts["street"]), f"{parts['city']}, {parts['state']} {parts['zip']}"]
                       if all(isinstance(v, str) and v for v in parts.values()) else [])
            return (patient.id, f"{patient.first_name} {patient.last_name}", address,
                    language_of(patient.value(PREFERRED_LANGUAGE_KEY)))
    return None


def _why_no_address(draft: StatementDraft, found: tuple[str, str, list[str], str] | None) -> str:
    """Why an account gets no statement, in the words staff need to fix it."""
    if found is not None:
        return (f"no address in the export, and the patient's record ({found[0]}) has no complete address: "
                "add it to the record or the billing system")
    if all(dob is None for _, dob in draft.patient_keys):
        return ("no address in the export, and no date of birth to find the patient's record: export the "
                "guarantor address or the patient date of birth")
    return ("no address in the export, and no patient record matches the name and date of birth: check the "
            "spelling in the billing system")


def issue_statements(db: Database, storage: Storage, settings: Settings, ledger: Ledger, *,
                     statement_date: date, minimum: Any = None, dry_run: bool = False) -> StatementRun:
    """One statement per account above the minimum: recorded pending, rendered, filed.

    Recorded first, rendered second: a crash in between leaves pending statements that the next run (or
    the mail batch) renders from their stored data. An account already billed on this statement date is
    skipped, so running the same export twice bills nobody twice.
    """
    from decimal import Decimal

    floor = Decimal(str(minimum)) if minimum is not None else settings.statements.minimum_balance
    drafts, below = build_drafts(ledger, statement_date=statement_date, minimum=floor)
    run = StatementRun(statement_date, ledger.rows, len({ln.account for ln in ledger.lines} | ledger.bad_accounts),
                       below_minimum=below, problems=list(ledger.problems), dry_run=dry_run)
    if ledger.bad_accounts:
        run.problems.append(f"{len(ledger.bad_accounts)} account(s) with unreadable rows get no statement")
        for account in sorted(ledger.bad_accounts):
            rows = [ln.row for ln in ledger.lines if ln.account == account]
            run.unbillable.append({"rows": _rows_label(rows) if rows else "unreadable rows only",
                                   "reason": "some of its rows could not be read (see problems): fix the export"})
    jobs: list[RenderJob] = []
    for draft in drafts:
        found = _patient_of(db, draft, remember=not dry_run, run=run)
        patient_id = found[0] if found else None
        if not draft.address_lines:
            if found is None or not found[2]:
                run.without_address.append(_rows_label(draft.rows))
                run.unbillable.append({"rows": _rows_label(draft.rows), "reason": _why_no_address(draft, found)})
                continue
            draft.guarantor, draft.address_lines = found[1], found[2]
            draft.address_from = "record"
        cycle = f"{draft.account}|{statement_date.isoformat()}"
        with db.begin() as s:
            existing = s.scalars(select(StatementDetail).where(StatementDetail.cycle_key == cycle)).first()
            if existing is not None:
                run.already_issued += 1
                stm = s.get(Statement, existing.statement_id)
                if stm is not None and stm.storage_key is None and stm.context and not dry_run:
                    jobs.append(RenderJob(stm.id, STATEMENT_KIND, dict(stm.context)))  # finish a crashed run
                continue
            if dry_run:
                run.would_issue += 1
                continue
            stm = Statement(status="pending", patient_id=patient_id, statement_date=statement_date,
                            amount_due_cents=cents(draft.amount_due))
            s.add(stm)
            s.flush()
            stm.context = draft.context(settings, statement_date=statement_date, reference=stm.id.upper(),
                                        language=found[3] if found else "en")
            s.add(StatementDetail(statement_id=stm.id, account=draft.account, statement_date=statement_date,
                                  cycle_key=cycle, ledger_sha256=ledger.sha256, lines=len(draft.lines)))
            audit.record(s, "create", "statement", stm.id, patient_id=patient_id,
                         detail=f"{len(draft.lines)} lines; address from {draft.address_from}")
            run.issued.append(stm.id)
            jobs.append(RenderJob(stm.id, STATEMENT_KIND, dict(stm.context)))
    if jobs and not dry_run:
        result = render_and_file(db, storage, settings, jobs)
        run.render_failed = {piece: reason for piece, (_, reason) in result.failed.items()}
    return run


def void_statement(db: Database, statement_id: str) -> bool:
    """Withdraw a statement not yet mailed (its account can then be billed again on the same date)."""
    with db.begin() as s:
        stm = s.get(Statement, statement_id)
        if stm is None or stm.status not in ("pending",):
            return False
        advance(stm, PieceStatus.VOID)
        detail = s.get(StatementDetail, statement_id)
        if detail is not None:
            detail.cycle_key = None
        audit.record(s, "update", "statement", statement_id, patient_id=stm.patient_id, detail="void")
    return True


__all__ = ["MailBusyError", "RenderJob", "RenderResult", "StatementRun", "file_letter", "file_object",
           "file_statement", "filed_bytes", "issue_statements", "letters_lock", "month_key", "render_and_file",
           "render_pdfs", "void_statement"]

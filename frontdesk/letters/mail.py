"""The mail batch: every pending letter and statement in one print-ready PDF, exactly once.

A run (``frontdesk mail``, or the scheduled ``mail-batch`` flow):

1. finishes a batch an earlier run left half-built (claimed but not yet filed);
2. collects the pending pieces (letters and/or statements) and holds back those that cannot be mailed:
   an incomplete or unparseable address (:mod:`~frontdesk.letters.addresses`), a template that fails,
   a PDF that is missing, damaged or not US Letter. Held pieces stay pending and are reported;
3. renders and files the pieces that have no PDF yet (reminders are queued as data only);
4. checks each PDF's first page against the envelope windows (:mod:`~frontdesk.letters.layout`) and
   plans the batch: address sheets where needed, blank backs for duplex, each piece on a new sheet;
5. claims the pieces in one transaction: a batch row, a mail item per piece and a ``mail_pieces`` row
   whose ``live_piece`` is unique, so a piece can never be in two live batches, and each piece turns
   ``queued``. Re-running finds nothing pending and mails nothing twice;
6. composes the batch PDF and the manifest CSV and files them, with a summary, under
   ``mail/YYYY/MM/<batch id>/`` (``batch.pdf``, ``manifest.csv``, ``summary.json``); the batch is then
   ``submitted`` (ready to print), and a print copy is written to ``mail.output_dir``.

A batch can be voided (``--void BATCH``): its pieces return to pending for the next run, or are
re-issued at once in a new batch that records which one it replaces (``--reissue``). ``--mailed BATCH``
records that a batch went out. Dry runs (``--dry-run``) do steps 2-4 without recording or filing
anything.

A piece can also stop being wanted while its batch waits to be mailed (the patient's insurance card came
in and the missing-insurance letter is void): :func:`withdraw_piece` takes it out of the batch and the
rest of the batch stays as it is. The batch PDF and manifest are not rebuilt, because they may be printed
already; the piece is listed to be pulled from the printed stack instead (:func:`withdrawn_pieces`: by
``frontdesk mail``, ``--list`` and ``--mailed``), and marking the batch mailed does not record it as mailed.

Logs, summaries and the batch records carry ids, counts and reason codes only; names and addresses are
in the letters, the batch PDF and the manifest, which are filed like every other patient document.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk import audit
from frontdesk.db import Database
from frontdesk.db.letters_models import MailBatchDetail, MailPiece
from frontdesk.db.models import Letter, MailBatch, MailItem, Statement, StoredObjectRow, utcnow
from frontdesk.exceptions import FrontdeskError
from frontdesk.letters.addresses import check_address, clean_lines, zip_code
from frontdesk.letters.envelope import ENVELOPE
from frontdesk.letters.filing import (
    RenderJob,
    file_object,
    filed_bytes,
    letters_lock,
    month_key,
    render_and_file,
    render_pdfs,
)
from frontdesk.letters.kinds import STATEMENT_KIND
from frontdesk.letters.layout import (
    ENVELOPE_FLAT,
    BatchPiece,
    LayoutError,
    compose,
    inspect_pdf,
    manifest_csv,
    plan_batch,
)
from frontdesk.settings import Settings
from frontdesk.states import BatchStatus, PieceStatus, advance
from frontdesk.storage import Storage
from frontdesk.withdrawals import Withdrawn, withdraw_piece

log = logging.getLogger("frontdesk.mail")

KIND_FILTERS = ("letters", "statements", "all")
Table = Literal["letter", "statement"]


class BatchStateError(FrontdeskError):
    """The batch does not exist or is not in a state that allows what was asked."""


@dataclass
class Piece:
    """A pending letter or statement, with what the envelope must show. Holds patient data in memory."""

    piece_id: str
    table: Table
    kind: str
    patient_id: str | None
    recipient: str
    address_lines: list[str]
    return_lines: list[str]
    storage_key: str | None
    context: dict[str, Any] | None
    pdf: bytes | None = None
    pages: int = 0
    needs_sheet: bool = False

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (zip_code(self.address_lines), self.kind, self.piece_id)


@dataclass(frozen=True)
class Held:
    """A piece held back from this batch: its id, kind and why (a code and a plain reason)."""

    piece_id: str
    kind: str
    code: str
    reason: str


@dataclass
class MailSummary:
    """What a run did. Ids, counts, codes and storage keys only: safe for logs, the UI and the records."""

    dry_run: bool
    kind: str
    batch_id: str | None = None
    reissue_of: str | None = None
    items: int = 0
    pages: int = 0
    sheets: int = 0
    address_sheets: int = 0
    blank_pages: int = 0
    flat_envelopes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    held: list[Held] = field(default_factory=list)
    objects: dict[str, str] = field(default_factory=dict)
    print_files: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    # Pieces of batches not yet mailed that were withdrawn after printing: to pull from the stack.
    withdrawn: list[Withdrawn] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "kind": self.kind, "batch_id": self.batch_id, "reissue_of": self.reissue_of,
            "placement": ENVELOPE.name, "items": self.items, "pages": self.pages, "sheets": self.sheets,
            "address_sheets": self.address_sheets, "blank_pages": self.blank_pages,
            "flat_envelopes": self.flat_envelopes, "by_kind": dict(sorted(self.by_kind.items())),
            "held": [{"item_id": h.piece_id, "kind": h.kind, "code": h.code, "reason": h.reason} for h in self.held],
            "held_by_reason": dict(sorted(Counter(h.code for h in self.held).items())),
            "objects": self.objects, "print_files": self.print_files, "recovered": self.recovered,
            "withdrawn": [w.as_dict() for w in self.withdrawn],
        }

    def markdown(self) -> str:
        """Counts and codes only, for the Prefect UI."""
        title = "Mail batch (dry run)" if self.dry_run else f"Mail batch {self.batch_id or '(none)'}"
        lines = [f"# {title}", "", "| | count |", "|---|---|",
                 f"| pieces | {self.items} |", f"| pages | {self.pages} |", f"| sheets | {self.sheets} |",
                 f"| address sheets | {self.address_sheets} |", f"| blank backs | {self.blank_pages} |",
                 f"| flat envelopes | {self.flat_envelopes} |", f"| held back | {len(self.held)} |"]
        if self.by_kind:
            lines += ["", "| kind | pieces |", "|---|---|", *[f"| {k} | {v} |" for k, v in sorted(self.by_kind.items())]]
        if self.held:
            lines += ["", "| held: reason | pieces |", "|---|---|",
                      *[f"| {k} | {v} |" for k, v in sorted(Counter(h.code for h in self.held).items())]]
        if self.withdrawn:
            lines += ["", "**Pull before mailing**: these pieces were withdrawn after their batch was built.", "",
                      "| batch | position | item | pages |", "|---|---|---|---|",
                      *[f"| {w.batch_id} | {w.position} | {w.item_id} | {w.first_page}-{w.last_page} |"
                        for w in self.withdrawn]]
        return "\n".join(lines)


# --- collecting ----------------------------------------------------------------------------------------


def _return_lines(context: dict[str, Any] | None, settings: Settings) -> list[str]:
    """The return address the piece was rendered with (its practice block), else the configured one."""
    practice = (context or {}).get("practice")
    if isinstance(practice, dict) and isinstance(practice.get("name"), str):
        return clean_lines([practice["name"], *(practice.get("address_lines") or [])])
    return clean_lines([settings.practice.name, *settings.practice.address_lines])


def _recipient(context: dict[str, Any] | None, who: str) -> tuple[Any, Any]:
    block = (context or {}).get(who)
    if not isinstance(block, dict):
        return None, None
    return block.get("full_name"), block.get("address_lines")


def _as_piece(row: Letter | Statement, settings: Settings) -> Piece:
    context = row.context if isinstance(row.context, dict) else None
    if isinstance(row, Statement):
        table: Table = "statement"
        kind, who = STATEMENT_KIND, "guarantor"
    else:
        table, kind, who = "letter", row.kind, "patient"
    name, lines = _recipient(context, who)
    return Piece(piece_id=row.id, table=table, kind=kind, patient_id=row.patient_id,
                 recipient=" ".join(name.split()) if isinstance(name, str) else "",
                 address_lines=clean_lines(lines) if isinstance(lines, list) else [],
                 return_lines=_return_lines(context, settings), storage_key=row.storage_key, context=context)


def _pending_keys(s: Session, kind: str, only: Sequence[str] | None = None) -> list[tuple[Table, str]]:
    """(table, id) of the pending letters and/or statements no live batch holds, letters first, each
    oldest first: ids only, so a backlog of thousands costs little until its pieces are loaded."""
    live = select(MailPiece.live_piece).where(MailPiece.live_piece.is_not(None))
    keys: list[tuple[Table, str]] = []
    if kind in ("letters", "all", "reissue"):
        q = select(Letter.id).where(Letter.status == "pending", Letter.id.not_in(live))
        q = q.where(Letter.id.in_(list(only))) if only is not None else q
        keys.extend(("letter", i) for i in s.scalars(q.order_by(Letter.created_at, Letter.id)))
    if kind in ("statements", "all", "reissue"):
        q2 = select(Statement.id).where(Statement.status == "pending", Statement.id.not_in(live))
        q2 = q2.where(Statement.id.in_(list(only))) if only is not None else q2
        keys.extend(("statement", i) for i in s.scalars(q2.order_by(Statement.created_at, Statement.id)))
    return keys


def _load_pieces(s: Session, settings: Settings, keys: Sequence[tuple[Table, str]]) -> list[Piece]:
    rows: dict[str, Letter | Statement] = {}
    for start in range(0, len(keys), 500):  # bounded IN lists
        chunk = keys[start:start + 500]
        letters = [i for t, i in chunk if t == "letter"]
        statements = [i for t, i in chunk if t == "statement"]
        if letters:
            rows.update((r.id, r) for r in s.scalars(select(Letter).where(Letter.id.in_(letters))))
        if statements:
            rows.update((r.id, r) for r in s.scalars(select(Statement).where(Statement.id.in_(statements))))
    return [_as_piece(rows[i], settings) for _t, i in keys if i in rows]


def pending_pieces(s: Session, settings: Settings, kind: str, only: Sequence[str] | None = None) -> list[Piece]:
    """Pending letters and/or statements that no live batch holds, oldest first."""
    return _load_pieces(s, settings, _pending_keys(s, kind, only))


def pending_page(s: Session, settings: Settings, kind: str, *, offset: int = 0,
                 limit: int = 50) -> tuple[list[Piece], int]:
    """One page of :func:`pending_pieces` (same pieces, same order) and how many there are in all.

    Why: a practice's backlog can be thousands of letters; the console shows it a page at a time, and only
    the page's pieces are loaded and addressed."""
    keys = _pending_keys(s, kind)
    offset = max(0, offset)
    return _load_pieces(s, settings, keys[offset:offset + max(0, limit)]), len(keys)


def _row(s: Session, table: Table, piece_id: str) -> Letter | Statement | None:
    return s.get(Letter, piece_id) if table == "letter" else s.get(Statement, piece_id)


def _lock(s: Session, pieces: Sequence[tuple[Table, str]]) -> dict[str, Letter | Statement]:
    """Lock letters and statements and read them afresh, before their batch rows are touched: filing a
    card voids a letter (and withdraws it from its batch) while a run queues pieces or a person marks a
    batch mailed. Everyone locks pieces first, letters before statements, each in id order
    (:func:`frontdesk.records.void_letters_for_resolved` too), so two of them cannot deadlock."""
    out: dict[str, Letter | Statement] = {}
    fresh = {"populate_existing": True}
    letters = sorted({pid for t, pid in pieces if t == "letter"})
    if letters:
        out.update((r.id, r) for r in s.scalars(select(Letter).where(Letter.id.in_(letters)).order_by(Letter.id)
                                                .with_for_update().execution_options(**fresh)))
    statements = sorted({pid for t, pid in pieces if t == "statement"})
    if statements:
        out.update((r.id, r) for r in s.scalars(select(Statement).where(Statement.id.in_(statements))
                                                .order_by(Statement.id).with_for_update().execution_options(**fresh)))
    return out


def _table_of(kind: str) -> Table:
    return "statement" if kind == STATEMENT_KIND else "letter"


def _hold(piece: Piece, code: str, reason: str) -> Held:
    return Held(piece.piece_id, piece.kind, code, reason)


def _object_state(s: Session, key: str | None) -> str | None:
    if key is None:
        return None
    row = s.get(StoredObjectRow, key)
    return row.state if row is not None else "missing"


def prepare(db: Database, storage: Storage, settings: Settings, kind: str, *, dry_run: bool,
            only: Sequence[str] | None = None) -> tuple[list[Piece], list[Held]]:
    """Pending pieces that can go out, with their PDFs and first-page facts; and those held back."""
    held: list[Held] = []
    with db.begin() as s:
        pieces = pending_pieces(s, settings, kind, only)
        states = {p.piece_id: _object_state(s, p.storage_key) for p in pieces}
    ready: list[Piece] = []
    for piece in pieces:
        if piece.context is None:
            held.append(_hold(piece, "piece.no_data", "the letter has no data to address it with"))
            continue
        problem = check_address(piece.recipient, piece.address_lines)
        if problem is not None:
            held.append(_hold(piece, problem.code, problem.reason))
            continue
        if piece.storage_key is not None and states[piece.piece_id] == "pending":
            held.append(_hold(piece, "pdf.not_filed", "the letter's PDF is still being filed; next run"))
            continue
        ready.append(piece)

    to_render = [p for p in ready if p.storage_key is None]
    if to_render:
        jobs = [RenderJob(p.piece_id, p.kind, dict(p.context or {})) for p in to_render]
        if dry_run:
            result = render_pdfs(jobs, settings)
            for p in to_render:
                p.pdf = result.pdfs.get(p.piece_id)
        else:
            result = render_and_file(db, storage, settings, jobs)
            with db.begin() as s:
                for p in to_render:
                    row = _row(s, p.table, p.piece_id)
                    p.storage_key = row.storage_key if row is not None else None
        failed = result.failed
    else:
        failed = {}

    out: list[Piece] = []
    for piece in ready:
        if piece.piece_id in failed:
            code, reason = failed[piece.piece_id]
            held.append(_hold(piece, code, reason))
            continue
        if piece.pdf is None:
            piece.pdf = filed_bytes(db, storage, piece.storage_key) if piece.storage_key else None
        if piece.pdf is None:
            held.append(_hold(piece, "pdf.missing", "the filed PDF is missing or does not match its record"))
            continue
        try:
            facts = inspect_pdf(piece.pdf, piece.return_lines, [piece.recipient, *piece.address_lines])
        except LayoutError as exc:
            held.append(_hold(piece, exc.code, exc.reason))
            continue
        piece.needs_sheet, piece.pages = not facts.fits_windows, facts.pages
        out.append(piece)
    out.sort(key=lambda p: p.sort_key)
    return out, held


# --- claiming, composing, filing --------------------------------------------------------------------------


def _batch_pieces(pieces: Sequence[Piece], duplex: bool) -> list[BatchPiece]:
    layouts = plan_batch([(p.pages, p.needs_sheet) for p in pieces], duplex=duplex)
    out = []
    for piece, layout in zip(pieces, layouts, strict=True):
        assert piece.pdf is not None
        out.append(BatchPiece(piece.piece_id, piece.kind, piece.recipient, piece.address_lines, piece.return_lines,
                              piece.pdf, layout))
    return out


def _tally(summary: MailSummary, batch: Sequence[BatchPiece]) -> None:
    summary.items = len(batch)
    summary.pages = sum(p.layout.pages for p in batch if p.layout)
    summary.sheets = sum(p.layout.sheets for p in batch if p.layout)
    summary.address_sheets = sum(1 for p in batch if p.layout and p.layout.address_sheet)
    summary.blank_pages = sum(p.layout.blank_pages for p in batch if p.layout)
    summary.flat_envelopes = sum(1 for p in batch if p.layout and p.layout.envelope == ENVELOPE_FLAT)
    summary.by_kind = dict(Counter(p.kind for p in batch))


def _claim(db: Database, settings: Settings, pieces: list[Piece], kind: str,
           reissue_of: str | None) -> tuple[str | None, list[BatchPiece]]:
    """Record the batch and claim every piece in one transaction; pieces that stopped being pending
    meanwhile are left out. Returns the batch id and the planned pieces."""
    from hashlib import sha256

    with db.begin() as s:
        keep = []
        locked = _lock(s, [(p.table, p.piece_id) for p in pieces])
        for piece in pieces:
            row = locked.get(piece.piece_id)  # a card voiding it now must not find it queued after
            if row is not None and row.status == "pending" and row.storage_key == piece.storage_key:
                keep.append(piece)
        if not keep:
            return None, []
        planned = _batch_pieces(keep, settings.mail.duplex)
        batch = MailBatch(status="open")
        s.add(batch)
        s.flush()
        s.add(MailBatchDetail(batch_id=batch.id, kind=kind, duplex=settings.mail.duplex, placement=ENVELOPE.name,
                              items=len(planned), pages=sum(p.layout.pages for p in planned if p.layout),
                              sheets=sum(p.layout.sheets for p in planned if p.layout), reissue_of=reissue_of))
        for piece, bp in zip(keep, planned, strict=True):
            layout = bp.layout
            assert layout is not None and piece.pdf is not None
            item = MailItem(batch_id=batch.id, status="pending",
                            letter_id=piece.piece_id if piece.table == "letter" else None,
                            statement_id=piece.piece_id if piece.table == "statement" else None)
            s.add(item)
            s.flush()
            s.add(MailPiece(mail_item_id=item.id, batch_id=batch.id, piece_id=piece.piece_id,
                            live_piece=piece.piece_id, kind=piece.kind, position=layout.position,
                            first_page=layout.first_page, content_pages=layout.content_pages,
                            address_sheet=layout.address_sheet, blank_pages=layout.blank_pages, pages=layout.pages,
                            sheets=layout.sheets, envelope=layout.envelope,
                            pdf_sha256=sha256(piece.pdf).hexdigest()))
            row = locked[piece.piece_id]
            advance(row, PieceStatus.QUEUED)
            audit.record(s, "update", piece.table, piece.piece_id, patient_id=piece.patient_id,
                         detail=f"queued in {batch.id}")
        audit.record(s, "create", "mail_batch", batch.id, detail=f"{len(planned)} pieces; {kind}")
        return batch.id, planned


def _write_print_copy(settings: Settings, batch_id: str, pdf: bytes, manifest: bytes, folder: Path | None) -> list[str]:
    """The files the person at the printer uses, named by batch id only, readable by the owner only."""
    folder = folder or settings.mail.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in ((f"{batch_id}.pdf", pdf), (f"{batch_id}-manifest.csv", manifest)):
        path = folder / name
        tmp = path.with_name(f".{name}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        written.append(str(path))
    return written


def _finish(db: Database, storage: Storage, settings: Settings, batch_id: str, planned: Sequence[BatchPiece],
            summary: MailSummary, held: Sequence[Held], *, duplex: bool, out_dir: Path | None) -> None:
    """Compose, file and mark the batch submitted; write the print copy."""
    pdf = compose(planned, batch_id, duplex=duplex)
    manifest = manifest_csv(planned)
    _tally(summary, planned)
    summary.batch_id = batch_id
    with db.begin() as s:
        batch = s.get(MailBatch, batch_id)
        assert batch is not None
        created = batch.created_at
    keys = {name: month_key("mail", batch_id, created, name) for name in ("batch.pdf", "manifest.csv", "summary.json")}
    summary.held = list(held)
    summary.objects = {"batch": keys["batch.pdf"], "manifest": keys["manifest.csv"], "summary": keys["summary.json"]}
    file_object(db, storage, pdf, keys["batch.pdf"], role="batch", mail_batch_id=batch_id)
    file_object(db, storage, manifest, keys["manifest.csv"], role="batch", content_type="text/csv",
                mail_batch_id=batch_id)
    body = json.dumps(summary.as_dict() | {"print_files": []}, indent=2).encode()
    file_object(db, storage, body, keys["summary.json"], role="batch", content_type="application/json",
                mail_batch_id=batch_id)
    with db.begin() as s:
        batch = s.get(MailBatch, batch_id)
        detail = s.get(MailBatchDetail, batch_id)
        assert batch is not None and detail is not None
        if batch.status != "open":
            raise BatchStateError(f"mail batch {batch_id} became {batch.status} while it was being built")
        batch.storage_key = keys["batch.pdf"]
        advance(batch, BatchStatus.SUBMITTED)
        batch.submitted_at = utcnow()
        detail.manifest_key, detail.summary_key = keys["manifest.csv"], keys["summary.json"]
        detail.held = len(held)
        audit.record(s, "update", "mail_batch", batch_id, detail=f"submitted; {summary.pages} pages")
    summary.print_files = _write_print_copy(settings, batch_id, pdf, manifest, out_dir)
    with db.begin() as s:
        audit.record(s, "export", "mail_batch", batch_id, detail="print copy")
    log.info("mail batch %s: %d pieces, %d pages, %d sheets, %d held", batch_id, summary.items, summary.pages,
             summary.sheets, len(held))


def _recover_open(db: Database, storage: Storage, settings: Settings, out_dir: Path | None) -> list[str]:
    """Finish batches an interrupted run claimed but did not file. A piece whose PDF changed since it
    was claimed cannot be rebuilt as planned: such a batch is voided and its pieces return to pending."""
    from hashlib import sha256

    with db.begin() as s:
        open_ids = list(s.scalars(select(MailBatch.id).where(MailBatch.status == "open").order_by(MailBatch.created_at)))
    finished = []
    for batch_id in open_ids:
        with db.begin() as s:
            detail = s.get(MailBatchDetail, batch_id)
            assert detail is not None
            kind, duplex, reissue_of = detail.kind, detail.duplex, detail.reissue_of
            claimed = []
            withdrawn = False
            for mp in s.scalars(select(MailPiece).where(MailPiece.batch_id == batch_id).order_by(MailPiece.position)):
                row = _row(s, _table_of(mp.kind), mp.piece_id)
                assert row is not None
                withdrawn = withdrawn or mp.live_piece is None or row.status != "queued"
                piece = _as_piece(row, settings)
                piece.needs_sheet, piece.pages = mp.address_sheet, mp.content_pages
                claimed.append((piece, mp.pdf_sha256))
        if withdrawn:
            # Nothing is printed yet: build the batch again without the piece rather than print it to be pulled.
            log.info("mail batch %s lost a piece before it was built; voiding it", batch_id)
            _void(db, batch_id, reason="a piece was withdrawn before the batch was built")
            continue
        intact = []
        for piece, sha in claimed:
            data = filed_bytes(db, storage, piece.storage_key) if piece.storage_key else None
            if data is None or sha256(data).hexdigest() != sha:
                break
            piece.pdf = data
            intact.append(piece)
        if len(intact) != len(claimed):
            log.warning("mail batch %s cannot be rebuilt as claimed; voiding it", batch_id)
            _void(db, batch_id, reason="could not be rebuilt after an interrupted run")
            continue
        summary = MailSummary(dry_run=False, kind=kind, reissue_of=reissue_of)
        _finish(db, storage, settings, batch_id, _batch_pieces(intact, duplex), summary, [], duplex=duplex,
                out_dir=out_dir)
        finished.append(batch_id)
    return finished


def run_mail(db: Database, storage: Storage, settings: Settings, *, kind: str = "all", dry_run: bool = False,
             out_dir: Path | None = None) -> MailSummary:
    """One mail run (see the module docstring)."""
    if kind not in KIND_FILTERS:
        raise ValueError(f"kind must be one of {', '.join(KIND_FILTERS)}")
    if dry_run:
        summary = MailSummary(dry_run=True, kind=kind)
        pieces, summary.held = prepare(db, storage, settings, kind, dry_run=True)
        if pieces:
            planned = _batch_pieces(pieces, settings.mail.duplex)
            _tally(summary, planned)
            if out_dir is not None:
                pdf = compose(planned, "dry-run", duplex=settings.mail.duplex)
                summary.print_files = _write_print_copy(settings, "dry-run", pdf, manifest_csv(planned), out_dir)
        summary.withdrawn = withdrawn_pieces(db)
        return summary
    with letters_lock(db, settings):
        summary = _mail_locked(db, storage, settings, kind, out_dir=out_dir)
    summary.withdrawn = withdrawn_pieces(db)
    return summary


def _mail_locked(db: Database, storage: Storage, settings: Settings, kind: str, *, out_dir: Path | None,
                 only: Sequence[str] | None = None, reissue_of: str | None = None) -> MailSummary:
    summary = MailSummary(dry_run=False, kind=kind, reissue_of=reissue_of)
    summary.recovered = _recover_open(db, storage, settings, out_dir)
    pieces, held = prepare(db, storage, settings, kind, dry_run=False, only=only)
    summary.held = held
    if not pieces:
        log.info("mail run: nothing to mail (%d held)", len(held))
        return summary
    batch_id, planned = _claim(db, settings, pieces, kind, reissue_of)
    if batch_id is None:
        return summary
    _finish(db, storage, settings, batch_id, planned, summary, held, duplex=settings.mail.duplex, out_dir=out_dir)
    return summary


# --- void, re-issue, mailed ---------------------------------------------------------------------------------


def void_batch(db: Database, settings: Settings, batch_id: str, *, reason: str | None = None) -> list[str]:
    """Void a batch not yet mailed: its items are void, its pieces pending again (free for a new batch),
    except those withdrawn from it, which stay void. Returns the ids of the pieces pending again, in batch
    order. Waits for no one: a run building batches holds the lease."""
    with letters_lock(db, settings):
        return _void(db, batch_id, reason=reason)


def _void(db: Database, batch_id: str, *, reason: str | None = None) -> list[str]:
    with db.begin() as s:
        batch = s.get(MailBatch, batch_id)
        if batch is None:
            raise BatchStateError(f"no mail batch {batch_id}")
        if batch.status not in ("open", "submitted"):
            raise BatchStateError(f"mail batch {batch_id} is {batch.status}; only a batch not yet mailed can be voided")
        pieces = list(s.scalars(select(MailPiece).where(MailPiece.batch_id == batch_id).order_by(MailPiece.position)))
        back = []
        locked = _lock(s, [(_table_of(mp.kind), mp.piece_id) for mp in pieces])
        for mp in pieces:
            table = _table_of(mp.kind)
            row = locked.get(mp.piece_id)
            mp.live_piece = None
            if row is not None and row.status == "queued":  # a withdrawn (void) piece stays void
                advance(row, PieceStatus.PENDING)
                back.append(mp.piece_id)
                audit.record(s, "update", table, row.id, patient_id=row.patient_id, detail=f"back to pending from {batch_id}")
        for item in s.scalars(select(MailItem).where(MailItem.batch_id == batch_id)):
            item.status = "void"
        advance(batch, BatchStatus.VOID)
        detail = s.get(MailBatchDetail, batch_id)
        if detail is not None:
            detail.voided_at = utcnow()
            detail.void_reason = (reason or "")[:200] or None
        audit.record(s, "update", "mail_batch", batch_id, detail=f"void; {len(back)} pieces back to pending")
        return back


def reissue_batch(db: Database, storage: Storage, settings: Settings, batch_id: str, *, reason: str | None = None,
                  out_dir: Path | None = None) -> MailSummary:
    """Void a batch and mail exactly its pieces again, in a new batch that names the one it replaces."""
    with letters_lock(db, settings):
        pieces = _void(db, batch_id, reason=reason)
        summary = _mail_locked(db, storage, settings, "reissue", out_dir=out_dir, only=pieces, reissue_of=batch_id)
    summary.withdrawn = withdrawn_pieces(db)
    return summary


def mark_mailed(db: Database, batch_id: str, when: datetime | None = None) -> int:
    """Record that a submitted batch went out: the batch, its items and its pieces become mailed. A piece
    withdrawn from the batch (void) is not recorded as mailed: staff were told to pull it
    (:func:`withdrawn_pieces`), and the records must not claim the patient was sent what was withdrawn.
    Returns how many pieces were recorded as mailed."""
    when = when or utcnow()
    with db.begin() as s:
        batch = s.get(MailBatch, batch_id)
        if batch is None:
            raise BatchStateError(f"no mail batch {batch_id}")
        items = list(s.scalars(select(MailItem).where(MailItem.batch_id == batch_id).order_by(MailItem.id)))
        locked = _lock(s, [("letter", i.letter_id) if i.letter_id else ("statement", i.statement_id or "")
                           for i in items])
        s.refresh(batch, with_for_update=True)  # after its pieces, as voiding the batch locks them
        if batch.status != "submitted":
            raise BatchStateError(f"mail batch {batch_id} is {batch.status}; only a submitted batch can be mailed")
        advance(batch, BatchStatus.MAILED)
        batch.mailed_at = when
        count = withdrawn = 0
        for item in items:
            row = locked.get(item.letter_id or item.statement_id or "")
            s.refresh(item)  # its piece is locked now: the item cannot be withdrawn any more meanwhile
            if item.status == "void" or (row is not None and row.status == "void"):
                item.status = "void"  # withdrawn (or voided without being withdrawn): not sent
                withdrawn += 1
                continue
            item.status, item.mailed_at = "mailed", when
            if row is not None and row.status == "queued":
                advance(row, PieceStatus.MAILED)
                row.mailed_at = when
                count += 1
        audit.record(s, "update", "mail_batch", batch_id,
                     detail=f"mailed; {count} pieces" + (f"; {withdrawn} withdrawn, not mailed" if withdrawn else ""))
    return count


def withdrawn_pieces(db: Database, batch_id: str | None = None) -> list[Withdrawn]:
    """Pieces withdrawn from batches after they were built: of ``batch_id``, or (None) of every batch
    not yet mailed, i.e. the pieces someone still has to pull from a printed stack. In batch order."""
    q = (select(MailPiece, MailBatch.status).join(MailItem, MailItem.id == MailPiece.mail_item_id)
         .join(MailBatch, MailBatch.id == MailPiece.batch_id)
         .where(MailItem.status == "void", MailBatch.status != "void"))
    q = q.where(MailPiece.batch_id == batch_id) if batch_id is not None else \
        q.where(MailBatch.status.in_(("open", "submitted")))
    with db.read() as s:  # looking only: no write lock (the console's Mail page calls this per batch)
        return [Withdrawn(mp.batch_id, mp.piece_id, mp.kind, mp.position, mp.first_page, mp.pages, status)
                for mp, status in s.execute(q.order_by(MailBatch.created_at, MailPiece.batch_id, MailPiece.position))]


@dataclass
class BatchInfo:
    batch_id: str
    status: str
    kind: str
    items: int
    pages: int
    sheets: int
    held: int
    created_at: str
    reissue_of: str | None
    batch_key: str | None
    manifest_key: str | None
    # Pieces withdrawn after the batch was built (see withdraw_piece): to pull, or pulled once mailed.
    withdrawn: list[dict[str, Any]] = field(default_factory=list)


def list_batches(db: Database, limit: int = 20) -> list[BatchInfo]:
    with db.read() as s:  # looking only: no write lock
        rows = s.execute(select(MailBatch, MailBatchDetail).join(MailBatchDetail, MailBatchDetail.batch_id == MailBatch.id)
                         .order_by(MailBatch.created_at.desc()).limit(limit)).all()
        infos = [BatchInfo(b.id, b.status, d.kind, d.items, d.pages, d.sheets, d.held,
                           b.created_at.isoformat(timespec="seconds"), d.reissue_of, b.storage_key, d.manifest_key)
                 for b, d in rows]
    for info in infos:
        if info.status != "void":
            info.withdrawn = [w.as_dict() for w in withdrawn_pieces(db, info.batch_id)]
    return infos


__all__ = ["KIND_FILTERS", "BatchInfo", "BatchStateError", "Held", "MailSummary", "Piece", "Withdrawn",
           "list_batches", "mark_mailed", "pending_pieces", "prepare", "reissue_batch", "run_mail", "void_batch",
           "withdraw_piece", "withdrawn_pieces"]

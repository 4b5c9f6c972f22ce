"""What one intake run works with, and its stages' work: recovery, one document's intake (hash, extract,
check, match the patient, plan, store, confirm) and a batch's letters. The order of the stages, for every
entry point, is :func:`frontdesk.intake.run_intake`.

Exactly once: a document is known by its SHA-256. Before any object is written its row is recorded
``pending`` with the exact keys it will use (see :mod:`frontdesk.records`); keys derive from the document
id, which derives from the hash, so a retry overwrites the same objects. A file seen before is recorded
as a ``duplicate`` arrival and not processed again.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from frontdesk import records
from frontdesk.db import Database, DatabaseUnavailableError, connection_lost, open_database
from frontdesk.exceptions import InputFileError, StorageError
from frontdesk.extraction import Reader
from frontdesk.field_flags import missing_insurance_items
from frontdesk.models import X12_TYPES, ExtractionResult, ProcessOutcome, StoredObject
from frontdesk.objects import PlannedObject, file_object
from frontdesk.settings import Settings
from frontdesk.storage import Storage, open_storage, sha256_bytes, sha256_file

log = logging.getLogger("frontdesk.pipeline")

SUPPORTED_SUFFIXES = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png",
                      ".x12", ".edi", ".271", ".999", ".277"}  # a clearinghouse's responses (issue 19)
X12_SUFFIXES = {".x12", ".edi", ".271", ".999", ".277"}
_IGNORED_PREFIXES = (".", "~$", "._")
MISSING_INSURANCE_CODE = "insurance.missing_info"
MISSING_INSURANCE_LETTER = "missing_insurance"
STACK = "scan_stack"  # document_type recorded for a scan that held several documents


def collect_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files named directly are taken as they are (even with an odd suffix: they are reported, not
    skipped silently); folders contribute their supported, non-hidden files, sorted."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if (child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES
                        and not child.name.startswith(_IGNORED_PREFIXES)):
                    found.append(child)
        else:
            found.append(p)
    seen: set[Path] = set()
    unique = []
    for p in found:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(p)
    return unique


def document_id(sha256: str) -> str:
    """Opaque and stable: the same file always gets the same id, so filing it again changes nothing."""
    return f"doc-{sha256[:16]}"


def _suffix(path: Path) -> str:
    s = path.suffix.lower()
    return s if s in SUPPORTED_SUFFIXES else ".bin"


def _content_type(suffix: str) -> str:
    if suffix in X12_SUFFIXES:
        return "application/edi-x12"
    return mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


@dataclass
class IntakeWork:
    """One input on its way through the pipeline. Holds patient data in memory only."""

    input: Path
    sha256: str | None = None
    document_id: str | None = None
    status: str = "failed"
    result: ExtractionResult | None = None
    stored: list[StoredObject] = field(default_factory=list)
    letters: list[StoredObject] = field(default_factory=list)
    error: str | None = None
    prefix: str = ""
    patient_id: str | None = None
    document_type: str | None = None  # from the records, for a duplicate whose reading is not reloaded
    parts: list[IntakeWork] = field(default_factory=list)  # a scanned stack: each form in it
    parent_id: str | None = None  # a part: the stack it was cut from
    source_pages: list[int] | None = None  # a part: its 1-based pages of the input

    def documents(self) -> list[IntakeWork]:
        """The documents this input became: itself, or each form of a scanned stack."""
        return list(self.parts) if self.parts else [self]

    def outcome(self) -> ProcessOutcome:
        parts = [p.outcome() for p in self.parts]
        status = self.status
        doc_type = self.result.document_type if self.result else self.document_type
        if parts:
            # The input as a whole: it needs a person when any form in it does.
            if status != "duplicate":
                status = "needs_review" if any(p.status == "needs_review" for p in parts) else self.status
            types = {p.document_type for p in parts}
            doc_type = types.pop() if len(types) == 1 else None
        return ProcessOutcome(
            input=str(self.input),
            status=status,  # type: ignore[arg-type]
            record_id=self.document_id,
            document_type=doc_type if doc_type != STACK else None,  # type: ignore[arg-type]
            stored=self.stored,
            letters=self.letters,
            flags=self.result.flags if self.result else [],
            error=self.error,
            source_pages=self.source_pages,
            parent_record_id=self.parent_id,
            parts=parts,
        )


@dataclass
class RecoveryReport:
    """What the start of a run repaired: spooled objects sent, pending documents completed."""

    spool_sent: int = 0
    spool_waiting: int = 0
    documents_completed: int = 0
    documents_still_pending: int = 0
    letters_due: int = 0


class Pipeline:
    """Settings, templates, vocabulary, storage and records, built once and shared by all documents."""

    RECOVER_INTERVAL = 300.0  # seconds between recoveries in a long-running process

    def __init__(self, settings: Settings, *, storage: Storage | None = None, db: Database | None = None,
                 extra_forms_dirs: list[Path] | None = None, today: date | None = None) -> None:
        from frontdesk import filemodes

        filemodes.lock_down(settings)  # every process that files patient data: 0600 / 0700
        self.settings = settings
        self.reader = Reader(settings, extra_forms_dirs)
        self.storage: Storage = storage or open_storage(settings)
        self.db = db or open_database(settings)
        self.today = today
        self._recovered_at: float | None = None
        self._letters_due: list[IntakeWork] = []
        self._completed_by_recovery: dict[str, IntakeWork] = {}

    # --- storage with records ---------------------------------------------------------------------------

    def _uri(self, key: str) -> str:
        return self.storage.uri(key)

    def _as_stored(self, row: Any) -> StoredObject:
        return StoredObject(key=row.key, uri=self._uri(row.key), sha256=row.sha256 or "", size=row.size or 0)

    def store_recorded(self, data: bytes, key: str, *, role: str, content_type: str = "application/octet-stream",
                       document_id: str | None = None, letter_id: str | None = None,
                       statement_id: str | None = None, mail_batch_id: str | None = None) -> StoredObject:
        """Write (or overwrite) one object and keep its record right: planned, stored, then confirmed.
        For any code that files an object outside intake (a reviewed extraction, a statement, a batch)."""
        with self.db.begin() as s:
            patient_id = _patient_of(s, document_id)
        return file_object(self.db, self.storage, data, key, role=role, content_type=content_type,
                           patient_id=patient_id, document_id=document_id, letter_id=letter_id,
                           statement_id=statement_id, mail_batch_id=mail_batch_id)

    def refile_reading(self, document_id: str, result: ExtractionResult, extraction_key: str,
                       record_bytes: bytes) -> StoredObject:
        """File a corrected reading of a filed document (e.g. after a person's review): the new
        ``extraction.json`` (its record updated with the new hash) and the reading in the records, which
        replaces the document's open flags and updates the patient. Letters then follow through
        :meth:`send_letters` as usual."""
        obj = self.store_recorded(record_bytes, extraction_key, role="extraction", content_type="application/json",
                                  document_id=document_id)
        outcome = "needs_review" if result.needs_review() else "filed"
        with self.db.begin() as s:
            records.record_new_reading(s, document_id, result, outcome=outcome, vocab=self.reader.vocabulary)
        return obj

    def _prefix(self, area: str, doc_id: str) -> str:
        now = datetime.now(UTC)
        return f"{area}/{now:%Y}/{now:%m}/{doc_id}"

    # --- recovery -------------------------------------------------------------------------------------------

    def recover(self, *, force: bool = False) -> RecoveryReport:
        """Finish what an earlier run left: send spooled objects, complete pending documents whose file
        is still where it was read from, and queue letters that were due.

        ``intake`` calls it first, so every caller gets it: at the start of a run, and again every
        ``RECOVER_INTERVAL`` seconds in a long-running process (a watcher), so the spool is sent once
        storage is back. A document that cannot be completed is logged (by id) and left for later: it
        must not stop every other document from being filed."""
        report = RecoveryReport()
        now = time.monotonic()
        if not force and self._recovered_at is not None and now - self._recovered_at < self.RECOVER_INTERVAL:
            return report
        self._recovered_at = now
        sweep = getattr(self.storage, "sweep_partials", None)
        if sweep is not None:
            sweep()
        try:
            report.spool_sent, report.spool_waiting = self.flush_spool()
        except StorageError as exc:  # e.g. access denied: the spool keeps everything, the run goes on
            log.warning("spool not sent: %s", exc)
        with self.db.begin() as s:
            # A pending part of a scanned stack is completed by taking its stack again (which is pending too:
            # a stack is completed after all its parts).
            pending = [(d.id, d.sha256, records.last_source_path(s, d.id)) for d in records.pending_documents(s)
                       if d.parent_id is None]
        for doc_id, sha, source in pending:
            path = Path(source) if source else None
            if path is not None and path.is_file() and _hash_or_none(path) == sha:
                try:
                    work = self._intake(path, recovering=True)
                except Exception as exc:  # a reader bug on one file must not block every run
                    report.documents_still_pending += 1
                    log.warning("document %s could not be completed (%s)", doc_id, exc.__class__.__name__)
                    continue
                if work.status != "duplicate":
                    report.documents_completed += 1
                    self._completed_by_recovery[doc_id] = work
                    if self.needs_missing_insurance_letter(work):
                        self._queue_letters(work)
            else:
                report.documents_still_pending += 1
                log.warning("document %s is pending and its file is gone; hand the file in again", doc_id)
        with self.db.begin() as s:
            due = [d.id for d in records.documents_awaiting_letters(s)]
        for doc_id in due:
            if any(w.document_id == doc_id for w in self._letters_due):
                continue
            due_work = self._work_from_record(doc_id, Path(doc_id), status="duplicate")
            if due_work is not None:
                self._queue_letters(due_work)
        report.letters_due = len(self._letters_due)
        if any((report.spool_sent, report.spool_waiting, report.documents_completed,
                report.documents_still_pending, report.letters_due)):
            log.info("recovery: %s", report)
        return report

    @property
    def letters_due(self) -> int:
        """Letters queued by recovery for the next ``send_letters`` call."""
        return len(self._letters_due)

    def _queue_letters(self, work: IntakeWork) -> None:
        if all(w.document_id != work.document_id for w in self._letters_due):
            self._letters_due.append(work)

    def flush_spool(self) -> tuple[int, int]:
        """Send spooled objects to storage and mark them stored. Returns (sent, still waiting)."""
        sent, waiting, error = records.flush_spool(self.db, self.storage)
        if error:
            log.warning("spool not emptied: %d objects wait (%s)", waiting, error)
        return sent, waiting

    # --- intake -------------------------------------------------------------------------------------------

    def intake(self, path: Path, *, recover: bool = True) -> IntakeWork:
        """Hash, extract, check, file and record one input. Bad input is filed under ``failed/`` with a
        reason; a file seen before is a ``duplicate``. ``recover=False`` for a reading process whose
        batch owner has already recovered (see :mod:`frontdesk.readers`)."""
        path = Path(path)
        # A lost database connection (PostgreSQL restarted, connections terminated) is no fault of this
        # document: it is taken again on a new connection (the engine pings before each use) until
        # ``database_reconnect_seconds`` have passed. Reserve -> store -> complete makes a repeat safe: a
        # reserved document is stored again under the same keys, a completed one is recognised as this
        # input's own filing (not a duplicate of itself).
        deadline = time.monotonic() + self.settings.database_reconnect_seconds
        delay, retrying = 0.5, False
        while True:
            try:
                if recover:
                    self.recover()
                done = self.take_recovered(path)
                return done if done is not None else self._intake(path, retrying=retrying)
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseUnavailableError.after(exc) from None
                log.warning("the records database connection was lost (%s); trying again in %.1f s",
                            exc.__class__.__name__, delay)
                time.sleep(delay)
                delay, retrying = min(delay * 2, 5.0), True

    def take_recovered(self, path: Path) -> IntakeWork | None:
        """The work of this run's recovery if it just completed the document from ``path`` (a file left in
        processing by a crash): that is this input's processing, not a duplicate of it."""
        for doc_id, work in list(self._completed_by_recovery.items()):
            if work.input == path or _same_file(work.input, path):
                del self._completed_by_recovery[doc_id]
                return work
        return None

    def _intake(self, path: Path, *, recovering: bool = False, retrying: bool = False) -> IntakeWork:
        work = IntakeWork(input=path)
        try:
            work.sha256 = sha256_file(work.input)
            size = work.input.stat().st_size
        except OSError as exc:
            work.error = f"{work.input}: cannot read file ({exc.strerror or exc.__class__.__name__})"
            log.warning("input could not be opened: %s", exc.__class__.__name__)
            return work
        work.document_id = document_id(work.sha256)
        prefix: str | None = None
        received: datetime | None = None
        own = False
        with self.db.begin() as s:
            doc = records.document_by_sha(s, work.sha256)
            if doc is not None and doc.state != "pending":
                # Taken again after a lost connection, and completed from this very path: the commit went
                # through but its answer was lost. That is this input's filing, not a second arrival.
                own = retrying and records.last_source_path(s, doc.id) == str(work.input)
                if not recovering and not own and work.document_id not in self._completed_by_recovery:
                    records.record_duplicate(s, doc, str(work.input))
                prefix = doc.storage_prefix
                awaiting = doc.state == "awaiting_letters"
            else:
                prefix = doc.storage_prefix if doc is not None else None
                received = doc.received_at if doc is not None else None
                awaiting = False
        if doc is not None and doc.state != "pending":
            done = self._completed_by_recovery.pop(work.document_id, None)
            if done is not None and not recovering:
                # This run's recovery just finished it from the same file: report that work, which is
                # this input's processing, rather than calling the input a duplicate of itself.
                done.input = work.input
                return done
            log.info("document %s seen before; not processed again", work.document_id)
            status = (doc.outcome or "filed") if own else "duplicate"
            dup = self._work_from_record(work.document_id, work.input, status=status, with_result=awaiting or own)
            assert dup is not None
            if awaiting:
                self._queue_letters(dup)
            return dup
        # A retry writes the same bytes as the attempt it repairs: same keys, same receipt time.
        received = received or datetime.now(UTC).replace(microsecond=0)
        try:
            results = self.reader.extract_all(work.input)
        except InputFileError as exc:
            work.error = str(exc)
            return self._file(work, size, prefix or self._prefix("failed", work.document_id), received,
                              failed=exc.reason)
        if len(results) > 1:
            from frontdesk import stacks

            try:  # before anything is recorded: a stack whose pages cannot be cut apart is set aside whole
                cuts = [stacks.pages_of(work.input, r.source_pages or []) for r in results]
            except (InputFileError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, InputFileError) else "its documents could not be told apart"
                work.error = f"{work.input}: {reason}"
                return self._file(work, size, prefix or self._prefix("failed", work.document_id), received,
                                  failed=reason)
            return self._file_stack(work, size, prefix or self._prefix("documents", work.document_id), received,
                                    results, cuts)
        work.result = results[0]
        return self._file(work, size, prefix or self._prefix("documents", work.document_id), received)

    def _file_stack(self, work: IntakeWork, size: int, prefix: str, received: datetime,
                    results: list[ExtractionResult], cuts: list[tuple[bytes, str]]) -> IntakeWork:
        """A scan holding several documents: each is filed on its own (an original of only its pages, its
        reading, its patient, its letters), then the whole scan with a list of its parts.

        The stack is reserved first and completed last, so a crash in between leaves it pending and the
        next run takes the file again: parts already complete are kept, pending ones are finished.
        ``cuts`` holds each part's own pages as a file (bytes, suffix)."""
        assert work.sha256 and work.document_id
        work.prefix = prefix
        try:
            original = work.input.read_bytes()
        except OSError as exc:
            work.error = f"{work.input}: cannot read file ({exc.strerror or exc.__class__.__name__})"
            return work
        if sha256_bytes(original) != work.sha256:
            work.error = f"{work.input}: the file changed while it was read; it will be taken again"
            return work
        parts: list[IntakeWork] = []
        for result in results:
            pages = list(result.source_pages or [])
            ident = sha256_bytes(f"{work.sha256}:pages={','.join(map(str, pages))}".encode())
            parts.append(IntakeWork(input=work.input, sha256=ident, document_id=document_id(ident), result=result,
                                    parent_id=work.document_id, source_pages=pages))
        listing = {"document_id": work.document_id, "sha256": work.sha256,
                   "received_at": received.isoformat(timespec="seconds"),
                   "parts": [{"document_id": p.document_id, "pages": p.source_pages} for p in parts]}
        body = json.dumps(listing, indent=2).encode()
        suffix = _suffix(work.input)
        objects = [
            (PlannedObject(f"{prefix}/original{suffix}", "original", work.sha256, size, _content_type(suffix)),
             original),
            (PlannedObject(f"{prefix}/stack.json", "stack", sha256_bytes(body), len(body), "application/json"), body),
        ]
        try:
            with self.db.begin() as s:
                records.reserve_document(s, document_id=work.document_id, sha256=work.sha256, size=size,
                                         prefix=prefix, objects=[p for p, _ in objects],
                                         source_path=str(work.input), received_at=received)
        except (IntegrityError, ValueError):
            log.info("document %s was recorded by another process", work.document_id)
            work.status, work.error = "duplicate", None
            return work
        for part, (data, part_suffix) in zip(list(parts), cuts, strict=True):
            assert part.sha256 and part.document_id and part.source_pages is not None
            with self.db.begin() as s:
                done = records.document_by_sha(s, part.sha256)
                state = done.state if done is not None else None
                done_outcome = (done.outcome if done is not None else None) or "filed"
                part_prefix = done.storage_prefix if done is not None else self._prefix("documents", part.document_id)
            if state is not None and state != "pending":  # filed by an attempt that crashed later
                again = self._work_from_record(part.document_id, work.input, status=done_outcome,
                                               with_result=True)
                assert again is not None
                again.parent_id, again.source_pages = work.document_id, part.source_pages
                parts[parts.index(part)] = again
                continue
            self._file(part, len(data), part_prefix, received, original=data, suffix=part_suffix)
        work.parts = parts
        work.stored = [self.storage.put_bytes(data, planned.key, content_type=planned.content_type)
                       for planned, data in objects]
        with self.db.begin() as s:
            doc = records.complete_document(s, work.document_id, result=None, outcome="filed", stored=work.stored)
            if doc is not None:
                doc.document_type, doc.pages = STACK, len(results)
        work.status, work.document_type = "filed", STACK
        log.info("filed scan %s as %d documents", work.document_id, len(parts))
        return work

    def _file(self, work: IntakeWork, size: int, prefix: str, received: datetime, *,
              failed: str | None = None, original: bytes | None = None, suffix: str | None = None) -> IntakeWork:
        """Reserve, store, complete: see the module docstring of :mod:`frontdesk.records`. ``original`` is
        given for a part of a scanned stack (its own pages); otherwise it is the input file."""
        assert work.sha256 and work.document_id
        work.prefix = prefix
        suffix = suffix or _suffix(work.input)
        if work.result is not None and work.result.document_type in X12_TYPES and suffix not in X12_SUFFIXES:
            suffix = ".x12"
        limit_mb = self.settings.extraction.max_file_mb
        if failed is not None and original is None and limit_mb and size > limit_mb * 1024 * 1024:
            # Refused for its size: a copy in storage would cost its whole size in memory here (a 2 GB
            # file, 2 GB) and fill the store with what was sent to hurt. The reason is filed; the file
            # itself stays where it is (the watcher moves it to failed/).
            return self._file_reason_only(work, size, prefix, received, failed)
        if original is None:
            try:
                original = work.input.read_bytes()
            except OSError as exc:
                work.error = f"{work.input}: cannot read file ({exc.strerror or exc.__class__.__name__})"
                return work
            if sha256_bytes(original) != work.sha256:  # changed since it was hashed: take it next time, whole
                work.error = f"{work.input}: the file changed while it was read; it will be taken again"
                work.status = "failed"
                return work
        original_sha = sha256_bytes(original) if work.parent_id else work.sha256
        objects: list[tuple[PlannedObject, bytes]] = [
            (PlannedObject(f"{prefix}/original{suffix}", "original", original_sha, size, _content_type(suffix)),
             original)]
        if failed is not None:
            note = f"{failed}\nsha256: {work.sha256}\n".encode()  # no file name: often a patient name
            objects.append((PlannedObject(f"{prefix}/reason.txt", "reason", sha256_bytes(note), len(note),
                                          "text/plain"), note))
        else:
            assert work.result is not None
            record: dict[str, Any] = {
                "document_id": work.document_id,
                "sha256": work.sha256,
                "received_at": received.isoformat(timespec="seconds"),
                "source_name": work.input.name,
                "extraction": work.result.model_dump(mode="json"),
            }
            if work.parent_id:
                record["sha256"] = original_sha
                record["source"] = {"document_id": work.parent_id, "pages": work.source_pages}
            body = json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8")
            objects.append((PlannedObject(f"{prefix}/extraction.json", "extraction", sha256_bytes(body),
                                          len(body), "application/json"), body))
        try:
            with self.db.begin() as s:
                before = {r.key for r in records.document_objects(s, work.document_id)[0]}
                reserved = records.reserve_document(s, document_id=work.document_id, sha256=work.sha256,
                                                    size=size, prefix=prefix, objects=[p for p, _ in objects],
                                                    source_path=str(work.input), received_at=received)
                if work.parent_id:
                    reserved.parent_id = work.parent_id
                    reserved.source_pages = ",".join(map(str, work.source_pages or []))
        except (IntegrityError, ValueError):  # another process recorded the same file a moment ago
            log.info("document %s was recorded by another process", work.document_id)
            work.status, work.result, work.error = "duplicate", None, None
            return work
        for planned, data in objects:
            work.stored.append(self.storage.put_bytes(data, planned.key, content_type=planned.content_type))
        # Keys planned by an earlier, interrupted attempt that this one did not write (its reading came out
        # differently): keep what did reach storage, so no object is left without a record.
        written = {p.key for p, _ in objects}
        kept = [obj for key in sorted(before - written) if (obj := self.storage.head(key)) is not None]
        if failed is not None:
            outcome = "failed"
        else:
            assert work.result is not None
            outcome = "needs_review" if work.result.needs_review() else "filed"
        letter_due = failed is None and self.needs_missing_insurance_letter(work)
        response = work.result.document_type if failed is None and work.result is not None else None
        prepared: Any = None
        if response in X12_TYPES:  # a clearinghouse's answer: what it needs from storage, before the commit
            from frontdesk.claims import responses

            prepared = responses.prepare(self.db, self.storage, str(response), original)
        with self.db.begin() as s:
            doc = records.complete_document(s, work.document_id, result=work.result, outcome=outcome,
                                            stored=[*work.stored, *kept], error=failed, letter_due=letter_due,
                                            vocab=self.reader.vocabulary)
            if doc is not None and prepared is not None:
                # Applied in the transaction that completes the document: exactly once, or not at all.
                responses.apply(s, self.settings, document_id=work.document_id, kind=str(response), data=original,
                                sha256=work.sha256, storage_key=objects[0][0].key, prepared=prepared,
                                today=self.today)
            work.patient_id = doc.patient_id if doc is not None else None
            outcome = doc.outcome if doc is not None and doc.outcome else outcome  # filing may ask for review
        work.status = outcome
        if failed is not None:
            log.warning("document %s could not be read; filed under failed/", work.document_id)
        else:
            assert work.result is not None
            log.info("filed %s as %s (%d flags)", work.document_id, work.status, len(work.result.flags))
        return work

    def _file_reason_only(self, work: IntakeWork, size: int, prefix: str, received: datetime,
                          failed: str) -> IntakeWork:
        """Reserve, store, complete for a document refused before reading whose original is not copied
        into storage (see :meth:`_file`): only its reason is stored."""
        assert work.sha256 and work.document_id
        note = (f"{failed}\nsha256: {work.sha256}\n"
                "The original was not copied into storage (over the size limit).\n").encode()
        planned = PlannedObject(f"{prefix}/reason.txt", "reason", sha256_bytes(note), len(note), "text/plain")
        try:
            with self.db.begin() as s:
                records.reserve_document(s, document_id=work.document_id, sha256=work.sha256, size=size,
                                         prefix=prefix, objects=[planned], source_path=str(work.input),
                                         received_at=received)
        except (IntegrityError, ValueError):
            work.status, work.result, work.error = "duplicate", None, None
            return work
        work.stored.append(self.storage.put_bytes(note, planned.key, content_type=planned.content_type))
        with self.db.begin() as s:
            records.complete_document(s, work.document_id, result=None, outcome="failed", stored=work.stored,
                                      error=failed, letter_due=False, vocab=self.reader.vocabulary)
        work.status = "failed"
        log.warning("document %s refused for its size; its reason is filed under failed/", work.document_id)
        return work

    def _work_from_record(self, doc_id: str, input_path: Path, *, status: str,
                          with_result: bool = True) -> IntakeWork | None:
        """An IntakeWork for a document already recorded: its objects, letters and (for letters still due)
        its reading rebuilt from the records."""
        with self.db.begin() as s:
            from frontdesk.db.models import Document

            doc = s.get(Document, doc_id)
            if doc is None:
                return None
            rows, letter_rows = records.document_objects(s, doc_id)
            result = records.extraction_result(s, doc_id) if with_result else None
            work = IntakeWork(input=input_path, sha256=doc.sha256, document_id=doc.id, status=status,
                              result=result, prefix=doc.storage_prefix, patient_id=doc.patient_id,
                              document_type=doc.document_type)
            work.stored = [self._as_stored(r) for r in rows]
            work.letters = [self._as_stored(r) for r in letter_rows if r.state != "pending"]
            work.parent_id = doc.parent_id
            work.source_pages = [int(n) for n in doc.source_pages.split(",") if n] if doc.source_pages else None
            child_ids = list(s.scalars(select(Document.id).where(Document.parent_id == doc_id)
                                       .order_by(Document.source_pages)))
        for child in child_ids:
            part = self._work_from_record(child, input_path, status=status, with_result=with_result)
            if part is not None:
                work.parts.append(part)
        work.parts.sort(key=lambda p: p.source_pages or [])
        return work

    # --- letters -----------------------------------------------------------------------------------------

    def needs_missing_insurance_letter(self, work: IntakeWork) -> bool:
        from frontdesk.letter_events import letter_enabled

        return bool(work.result and work.result.document_type == "intake_form"
                    and any(f.code == MISSING_INSURANCE_CODE for f in work.result.flags)
                    and letter_enabled(MISSING_INSURANCE_LETTER))

    def has_letter_work(self, works: Sequence[IntakeWork]) -> bool:
        """Whether :meth:`send_letters` has anything to write or settle for ``works``: a letter a document
        needs, letters left due by recovery, or a document seen before (its letters may be due). A batch
        whose documents need none skips the step (and its task run)."""
        if self._letters_due:
            return True
        return any(d.status == "duplicate" or (d.status != "failed" and not d.letters
                                               and self.needs_missing_insurance_letter(d))
                   for w in works for d in w.documents())

    def letter_context(self, work: IntakeWork) -> dict[str, object]:
        """What the missing-insurance letter needs. Patient data stays in memory and the records DB."""
        assert work.result is not None and work.document_id is not None
        r = work.result

        def s(key: str) -> str:
            v = r.value(key)
            return v if isinstance(v, str) else ""

        first, last = s("patient.first_name"), s("patient.last_name")
        city_line = " ".join(x for x in (f"{s('patient.address.city')},", s("patient.address.state"),
                                         s("patient.address.zip")) if x.strip(","))
        from frontdesk.language import PREFERRED_LANGUAGE_KEY, language_of, letter_date

        today = self.today or date.today()
        practice = self.settings.practice
        language = language_of(r.value(PREFERRED_LANGUAGE_KEY))
        return {
            "language": language,
            "practice": {"name": practice.name, "address_lines": list(practice.address_lines),
                         "phone": practice.phone},
            "letter_date": letter_date(today, language),
            "patient": {"full_name": " ".join(x for x in (first, last) if x), "first_name": first or "Patient",
                        "address_lines": [x for x in (s("patient.address.street"), city_line) if x]},
            "missing_items": missing_insurance_items(r, self.reader.vocabulary),
            "reference": work.document_id.upper(),
        }

    def _letter_filed(self, doc_id: str) -> StoredObject | None:
        with self.db.begin() as s:
            letter = records.letter_for(s, doc_id, MISSING_INSURANCE_LETTER)
            if letter is None or letter.storage_key is None:
                return None
            from frontdesk.db.models import StoredObjectRow

            row = s.get(StoredObjectRow, letter.storage_key)
            if row is None or row.state == "pending":
                return None
            return self._as_stored(row)

    def send_letters(self, works: Sequence[IntakeWork]) -> list[IntakeWork]:
        """Render every needed letter, convert them in one LibreOffice batch, and file the PDFs. Letters
        left due by an interrupted run are written in the same batch; a letter already filed for a
        document is never written twice."""
        from frontdesk.convert import BatchConversionError, docx_to_pdf
        from frontdesk.letters.kinds import render_context
        from frontdesk.rendering import render_docx

        given = works
        works = [d for w in works for d in w.documents()]
        candidates: list[IntakeWork] = []
        for w in [*works, *self._letters_due]:
            if w.document_id and w.status != "failed" and not w.letters and self.needs_missing_insurance_letter(w) \
                    and all(c.document_id != w.document_id for c in candidates):
                candidates.append(w)
        self._letters_due = []
        todo = []
        for w in candidates:
            assert w.document_id is not None
            filed = self._letter_filed(w.document_id)
            if filed is not None:
                w.letters.append(filed)
                with self.db.begin() as s:
                    records.finish_without_letters(s, w.document_id)
            else:
                todo.append(w)
        # A document marked "letters due" whose reading no longer asks for one (a review fixed it).
        no_letter = [w.document_id for w in works
                     if w.document_id and w.result is not None and not self.needs_missing_insurance_letter(w)]
        if no_letter:
            with self.db.begin() as s:
                for doc_id in no_letter:
                    records.finish_without_letters(s, doc_id)
        if not todo:
            return list(given)
        from frontdesk.language import context_language, template_for
        with tempfile.TemporaryDirectory(prefix="frontdesk-letters-") as tmp:
            tmpdir = Path(tmp)
            docs, contexts = [], []
            for w in todo:
                ctx = self.letter_context(w)
                contexts.append(ctx)
                template = template_for(self.settings.letters_dir, MISSING_INSURANCE_LETTER, context_language(ctx))
                # Rendered with the practice's logo; the records keep the plain context.
                docs.append(render_docx(template, render_context(ctx, self.settings),
                                        tmpdir / f"{w.document_id}.docx"))
            pdfs: list[Path | None]
            try:
                pdfs = list(docx_to_pdf(docs, tmpdir / "pdf"))
            except BatchConversionError as exc:
                # File the letters that converted; the others stay due and are written by the next run.
                by_id = {p.stem: p for p in exc.converted}
                pdfs = [by_id.get(str(w.document_id)) for w in todo]
                log.warning("%d missing-insurance letters could not be converted to PDF; they stay due (%s)",
                            len(exc.failed), ", ".join(sorted(p.stem for p in exc.failed)))
            written = 0
            for w, pdf, ctx in zip(todo, pdfs, contexts, strict=True):
                if pdf is not None:
                    self._file_letter(w, pdf.read_bytes(), ctx)
                    written += 1
        log.info("filed %d missing-insurance letters", written)
        return list(given)

    def _file_letter(self, work: IntakeWork, pdf: bytes, context: dict[str, Any]) -> None:
        assert work.document_id is not None
        key = f"{work.prefix}/letters/{MISSING_INSURANCE_LETTER}.pdf"
        planned = PlannedObject(key, "letter", sha256_bytes(pdf), len(pdf), "application/pdf")
        with self.db.begin() as s:
            letter = records.reserve_letter(s, document_id=work.document_id, kind=MISSING_INSURANCE_LETTER,
                                            planned=planned, context=context)
            letter_id = letter.id
        obj = self.storage.put_bytes(pdf, key, content_type="application/pdf")
        with self.db.begin() as s:
            records.complete_letter(s, letter_id, obj)
        work.letters.append(obj)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _hash_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _patient_of(session: Any, document_id: str | None) -> str | None:
    if document_id is None:
        return None
    from frontdesk.db.models import Document

    doc = session.get(Document, document_id)
    return doc.patient_id if doc is not None else None


__all__ = ["IntakeWork", "Pipeline", "RecoveryReport", "StorageError", "collect_inputs", "document_id"]

"""The watched folder: take each dropped file exactly once, never half-written, never lost.

Why it is built this way (see ``shared/design/lessons-from-anchors.md``, "Watched folder and ingestion"):

* Scanners and SMB clients write slowly, and change events go missing (or never arrive on network
  shares). Events only *suggest* files; a full rescan runs at start-up and every few minutes; a file is
  taken only when its size and mtime have not changed for ``stable_seconds`` *and* it parses (a PDF ends
  with ``%%EOF`` and opens; an image decodes).
* Two watchers, or one watcher seeing the same file twice, must not both process it: a file is claimed
  by an atomic rename into the processing area before any work starts.
* The ledger (SQLite, local disk, written before each step) makes every step restartable: a SIGKILL at
  any point leaves rows that say what to redo. Documents are keyed by SHA-256 there, so the same content
  dropped again is recognised as a duplicate instead of being filed twice.
* The original leaves the processing area only after its filed copy is confirmed by storage; unreadable
  files go to the failed area (``failed/<id>/<id>.<ext>``) with a ``reason.txt`` beside them.

File names in the processing and archive areas are opaque (claim ids, document ids); logs carry only
those. File names are often patient names ("Smith_John_intake.pdf"), so the original name is kept only
in the local ledger; ``frontdesk watch --failed`` lists failed items with it, on the staff's terminal.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import os
import signal
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from frontdesk.db import DatabaseUnavailableError
from frontdesk.exceptions import ConfigError, InboxInUseError, StorageError
from frontdesk.models import ProcessOutcome
from frontdesk.settings import Settings, WatchSettings
from frontdesk.storage import sha256_file

if TYPE_CHECKING:
    from frontdesk.readers import ReadingPool

log = logging.getLogger("frontdesk.watch")

#: Never taken: office lock files, partial downloads, OS litter, anything hidden.
BUILTIN_IGNORES = (
    ".*", "~$*", "._*", "*.tmp", "*.temp", "*.part", "*.partial", "*.crdownload", "*.download", "*~",
    "*.swp", "thumbs.db", "desktop.ini", "*.outcome.json", "*.reason.txt",
)
RECEIPT_SUFFIX = ".outcome.json"
TERMINAL = ("filed", "needs_review", "duplicate", "failed")


def is_ignored(name: str, extra: Sequence[str] = ()) -> bool:
    """Hidden, temporary and partial files are somebody else's work in progress, never a document."""
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, pat.lower()) for pat in (*BUILTIN_IGNORES, *extra))


# --------------------------------------------------------------------------------------------- areas


@dataclass(frozen=True)
class Areas:
    inbox: Path
    processing: Path
    archive: Path
    failed: Path

    def all(self) -> tuple[Path, ...]:
        return (self.processing, self.archive, self.failed)


def areas_for(inbox: Path, watch: WatchSettings) -> Areas:
    """Default areas sit beside the inbox: same filesystem, so a claim is one atomic rename."""
    inbox = Path(inbox).resolve()
    parent = inbox.parent
    areas = Areas(
        inbox=inbox,
        processing=Path(watch.processing or parent / "processing").resolve(),
        archive=Path(watch.archive or parent / "archive").resolve(),
        failed=Path(watch.failed or parent / "failed").resolve(),
    )
    for p in (areas.inbox, *areas.all()):
        p.mkdir(parents=True, exist_ok=True)
    if areas.inbox in areas.all():
        raise ConfigError("watch: the inbox cannot also be the processing, archive or failed area")
    if os.stat(areas.inbox).st_dev != os.stat(areas.processing).st_dev:
        raise ConfigError(f"watch: {areas.processing} must be on the same filesystem as the inbox "
                          "(a claim is an atomic rename)")
    return areas


# ---------------------------------------------------------------------------------------- completeness


def incomplete_reason(path: Path) -> str | None:
    """None when the file is whole; else why not. A scanner still writing leaves a PDF without its
    trailer or an image that stops mid-stream; both are caught here from the file's last bytes, before
    anything reads the file. Nothing is parsed or decoded in the watcher's own process: that is for the
    reading process, under its time, memory and pixel limits (a hostile file cannot stall the watcher)."""
    from extractors.base import sniff

    try:
        kind = sniff(path)
        if kind == "empty":
            return "empty"
        if kind not in ("pdf", "jpeg", "png", "x12"):
            return None  # TIFF and others cannot be checked from their tail: stability is all we have
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 2048))
            tail = fh.read()
        if kind == "x12" and b"IEA" not in tail[-256:]:
            return "x12 without its IEA trailer"
        if kind == "pdf" and b"%%EOF" not in tail:
            return "pdf without trailer"
        if kind == "jpeg" and b"\xff\xd9" not in tail[-64:]:
            return "jpeg without its end marker"
        if kind == "png" and b"IEND" not in tail[-64:]:
            return "png without its end chunk"
    except OSError as exc:
        return f"cannot be read yet ({exc.__class__.__name__})"
    return None


# ----------------------------------------------------------------------------------------------- ledger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    claim        TEXT PRIMARY KEY,   -- opaque file name in the processing area
    source       TEXT NOT NULL,      -- path relative to the inbox (PHI: shown only by `watch --failed`)
    state        TEXT NOT NULL,      -- claiming, claimed, processing, submitted, done, finished
    sha256       TEXT,
    document_id  TEXT,
    status       TEXT,               -- filed, needs_review, duplicate, failed
    reason       TEXT,
    flow_run_id  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   REAL NOT NULL DEFAULT 0,
    final_path   TEXT,
    claimed_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_state ON claims(state);
CREATE INDEX IF NOT EXISTS claims_sha ON claims(sha256);
CREATE TABLE IF NOT EXISTS documents (
    sha256       TEXT PRIMARY KEY,   -- one row per content ever processed: exactly-once across restarts
    document_id  TEXT,
    status       TEXT NOT NULL,
    claim        TEXT NOT NULL,
    done_at      REAL NOT NULL
);
"""


@dataclass
class Claim:
    claim: str
    source: str
    state: str
    sha256: str | None
    document_id: str | None
    status: str | None
    reason: str | None
    flow_run_id: str | None
    attempts: int
    not_before: float
    final_path: str | None


@dataclass(frozen=True)
class FailedItem:
    """A file in the failed area. ``source`` is its name in the inbox: PHI, for the staff's eyes only."""

    id: str
    source: str
    reason: str | None
    document_id: str | None
    path: str | None
    when: datetime


class WatchLedger:
    """Durable state of the watcher. Every change is committed before the step it announces, so after a
    SIGKILL the rows tell exactly what to redo (WAL + ``synchronous=FULL``: committed means on disk)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:  # inside transaction(): one commit for all
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                self._depth = 0
                self.db.execute("ROLLBACK")
                raise
            self._depth = 0
            self.db.execute("COMMIT")

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Several writes, one commit (each commit is an fsync): for the rows of a whole batch, written
        together before the step they all announce."""
        return self._tx()

    def _rows(self, sql: str, *args: Any) -> list[Claim]:
        with self._lock:
            cur = self.db.execute(
                "SELECT claim, source, state, sha256, document_id, status, reason, flow_run_id, attempts, "
                "not_before, final_path FROM claims " + sql, args)
            return [Claim(*row) for row in cur.fetchall()]

    def get(self, claim: str) -> Claim | None:
        rows = self._rows("WHERE claim = ?", claim)
        return rows[0] if rows else None

    def in_state(self, *states: str) -> list[Claim]:
        marks = ",".join("?" * len(states))
        return self._rows(f"WHERE state IN ({marks}) ORDER BY claimed_at, claim", *states)

    def unfinished(self) -> list[Claim]:
        return self._rows("WHERE state != 'finished' ORDER BY claimed_at, claim")

    def add(self, claim: str, source: str, state: str = "claiming") -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO claims (claim, source, state, claimed_at, updated_at) VALUES (?,?,?,?,?)",
                       (claim, source, state, now, now))

    def forget(self, claim: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM claims WHERE claim = ?", (claim,))

    def update(self, claim: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            db.execute(f"UPDATE claims SET {cols} WHERE claim = ?", (*values.values(), claim))

    def done(self, claim: str, sha256: str, *, status: str, document_id: str | None, reason: str | None) -> None:
        """The filed copy is confirmed (or the file is known unreadable): record it under its content."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE claims SET state='done', status=?, document_id=?, reason=?, updated_at=? "
                       "WHERE claim=?", (status, document_id, reason, now, claim))
            if status != "duplicate":
                db.execute("INSERT OR REPLACE INTO documents (sha256, document_id, status, claim, done_at) "
                           "VALUES (?,?,?,?,?)", (sha256, document_id, status, claim, now))
            else:
                # The records knew it (filed by a run killed before its ledger commit): the ledger learns
                # the content now, so the next copy is a duplicate here without reaching the pipeline.
                db.execute("INSERT OR IGNORE INTO documents (sha256, document_id, status, claim, done_at) "
                           "VALUES (?,?,?,?,?)", (sha256, document_id, status, claim, now))

    def document(self, sha256: str) -> tuple[str | None, str, str] | None:
        """(document id, status, claim) of content already processed, else None."""
        with self._lock:
            row = self.db.execute("SELECT document_id, status, claim FROM documents WHERE sha256 = ?",
                                  (sha256,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def busy_with(self, sha256: str, other_than: str) -> bool:
        """Is another claim of the same content in flight? Then this one waits and becomes a duplicate."""
        with self._lock:
            row = self.db.execute(
                "SELECT 1 FROM claims WHERE sha256 = ? AND claim != ? AND state IN ('processing','submitted')",
                (sha256, other_than)).fetchone()
        return row is not None

    def failed(self) -> list[FailedItem]:
        """Every file that ended in the failed area, oldest first, with the name it had in the inbox."""
        with self._lock:
            rows = self.db.execute(
                "SELECT claim, source, reason, document_id, final_path, updated_at FROM claims "
                "WHERE status = 'failed' AND state IN ('done', 'finished') ORDER BY updated_at, claim").fetchall()
        return [FailedItem(failed_id(r[0]), r[1], r[2], r[3], r[4], datetime.fromtimestamp(r[5], UTC))
                for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT state, count(*) FROM claims GROUP BY state").fetchall())


def failed_id(claim: str) -> str:
    """The opaque id of a failed item: its claim name without the suffix (logs print the claim)."""
    return Path(claim).stem


# ---------------------------------------------------------------------------------------------- receipts


def receipt_path(processing_file: Path) -> Path:
    return processing_file.with_name(processing_file.name + RECEIPT_SUFFIX)


def write_receipt(processing_file: Path, outcome: ProcessOutcome) -> Path:
    """Left beside the claimed file by a worker (possibly on another machine, on the shared area): ids,
    keys, status and flag codes only. Written atomically so a reader never sees half of it."""
    dest = receipt_path(processing_file)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(outcome.model_dump_json(), encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    return dest


def read_receipt(processing_file: Path) -> ProcessOutcome | None:
    path = receipt_path(processing_file)
    try:
        return ProcessOutcome.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


# -------------------------------------------------------------------------------------------- dispatching


@runtime_checkable
class BatchDispatcher(Protocol):
    """Processes a batch of claimed documents and returns when every one has an outcome (in this process
    or in its worker processes)."""

    def run(self, paths: list[Path]) -> list[ProcessOutcome]: ...


@runtime_checkable
class FlowRunDispatcher(Protocol):
    """Hands each claimed document to somebody else (a flow run on a work pool) and returns at once;
    ``poll`` later reports its outcome, or a reason when the run ended without one."""

    def submit(self, path: Path, sha256: str, attempt: int) -> str: ...

    def poll(self, path: Path, flow_run_id: str) -> ProcessOutcome | str | None: ...


#: The watcher takes either kind and picks its path by type.
Dispatcher = BatchDispatcher | FlowRunDispatcher


class LocalDispatcher:
    """The intake run without Prefect (:func:`frontdesk.intake.run_intake`): for machines without a
    server and as the benchmark's baseline.

    With ``workers`` > 1 the documents are read in a :class:`~frontdesk.readers.ReadingPool`, one process
    per core; recovery, review holds and the batch's letters stay here, in one place."""

    def __init__(self, settings: Settings, workers: int = 1) -> None:
        from frontdesk.convert import keep_warm
        from frontdesk.intake import Executor, InProcess
        from frontdesk.pipeline import Pipeline

        self.pipeline = Pipeline(settings)
        keep_warm()  # letters all day: one LibreOffice kept running, not one started per batch
        self.readers: ReadingPool | None = None
        self.executor: Executor = InProcess(self.pipeline)
        if workers > 1:
            from frontdesk.readers import ReadingPool

            self.readers = self.executor = ReadingPool(settings, workers)

    @property
    def broken(self) -> bool:
        return self.readers is not None and self.readers.broken

    def run(self, paths: list[Path]) -> list[ProcessOutcome]:
        from frontdesk.intake import run_intake

        return [w.outcome() for w in run_intake(self.pipeline, paths, self.executor)]

    def close(self) -> None:
        """Stops the reading pool and the LibreOffice this dispatcher kept warm: a process that goes on
        (a test session, a console serving requests) must not convert later letters with it."""
        from frontdesk.convert import keep_warm

        if self.readers is not None:
            self.readers.close()
        keep_warm(False)


# ------------------------------------------------------------------------------------------------ watcher


@dataclass
class _Candidate:
    size: int
    mtime_ns: int
    since: float  # when (size, mtime) last changed, as we saw it
    first_seen: float
    checked_complete_at: float = 0.0


@dataclass
class Stats:
    claimed: int = 0
    finished: dict[str, int] = field(default_factory=dict)


class Watcher:
    """Detect, claim, dispatch, finish. Single-threaded by design: every decision is taken in one place,
    in the main thread, so the ledger never sees two writers racing for a claim."""

    def __init__(self, settings: Settings, inbox: Path | None = None, *, config_file: str | None = None,
                 dispatcher: Dispatcher | Callable[[], Dispatcher] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.opts = settings.watch
        self.areas = areas_for(inbox or settings.inbox, self.opts)
        self.ledger = WatchLedger(self.opts.ledger)
        self.config_file = config_file
        # A dispatcher, or the command's factory for one (called on first use, and again for a broken pool)
        self._make: Callable[[], Dispatcher] | None = None
        self._dispatcher: Dispatcher | None = None
        if isinstance(dispatcher, BatchDispatcher | FlowRunDispatcher):
            self._dispatcher = dispatcher
        else:
            self._make = dispatcher
        self._owns_dispatcher = False
        self._lock_fd: int | None = None
        self._storage: Any = None  # the storage backend, for reading filed copies back (delete mode)
        self.clock = clock
        self.candidates: dict[Path, _Candidate] = {}
        self.stop_event = threading.Event()
        self.stats = Stats()
        self._last_rescan = -1e18

    @property
    def dispatcher(self) -> Dispatcher:
        """Built on first use when the command passed a factory (``flows.dispatch.make_dispatcher``): the
        inline dispatcher imports Prefect, which a quick start-up should not. None: the pipeline here,
        without Prefect (:class:`LocalDispatcher`)."""
        if self._dispatcher is None:
            self._dispatcher = self._make() if self._make is not None else LocalDispatcher(
                self.settings, self.settings.watch.workers or os.cpu_count() or 1)
            self._owns_dispatcher = True
        return self._dispatcher

    # ----------------------------------------------------------------------------------- detection

    def _wanted(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.areas.inbox)
        except ValueError:
            return False
        if any(path.is_relative_to(a) for a in self.areas.all()):
            return False
        if not self.opts.recursive and len(rel.parts) != 1:
            return False
        return not any(is_ignored(part, self.opts.ignore) for part in rel.parts)

    def notice(self, path: Path) -> None:
        """A change event or a scan saw ``path``: start (or keep) watching it until it is stable."""
        path = Path(path)
        if path in self.candidates or not self._wanted(path):
            return
        try:
            st = path.lstat()  # the entry itself: a link is never followed
        except OSError:
            return
        special = _special_kind(st.st_mode)
        if special is not None:
            self.refuse(path, f"{special}, not a regular file: refused without opening it")
            return
        if not stat.S_ISREG(st.st_mode):
            return
        now = self.clock()
        self.candidates[path] = _Candidate(st.st_size, st.st_mtime_ns, now, now)

    def rescan(self) -> None:
        """Walk the whole inbox: events are hints, this is the truth (watchers miss files)."""
        self._last_rescan = self.clock()
        root = self.areas.inbox
        it = root.rglob("*") if self.opts.recursive else root.iterdir()
        try:
            for p in it:
                self.notice(p)
        except OSError as exc:
            log.warning("inbox scan failed (%s); retrying at the next scan", exc.__class__.__name__)

    def ready(self) -> list[Path]:
        """Candidates whose size and mtime held still for the delay, and that parse."""
        now = self.clock()
        out: list[Path] = []
        for path, c in list(self.candidates.items()):
            try:
                st = path.stat()
            except OSError:
                del self.candidates[path]  # taken by someone else, or renamed away
                continue
            if (st.st_size, st.st_mtime_ns) != (c.size, c.mtime_ns):
                c.size, c.mtime_ns, c.since = st.st_size, st.st_mtime_ns, now
                continue
            if now - c.since < self.opts.stable_seconds or now - c.checked_complete_at < self.opts.stable_seconds:
                continue
            reason = incomplete_reason(path)
            if reason is not None and now - c.first_seen < self.opts.incomplete_grace_seconds:
                c.checked_complete_at = now  # look again after another quiet spell, not every tick
                continue
            try:  # the parse took time: a writer may have appended meanwhile
                st2 = path.stat()
            except OSError:
                del self.candidates[path]
                continue
            if (st2.st_size, st2.st_mtime_ns) != (c.size, c.mtime_ns):
                c.size, c.mtime_ns, c.since = st2.st_size, st2.st_mtime_ns, now
                continue
            out.append(path)
        return out

    # ------------------------------------------------------------------------------------- claiming

    def claim(self, path: Path) -> str | None:
        """Atomic rename into the processing area. The ledger row is written first, so a crash between
        the two is resolved at start-up by looking where the file is."""
        return self.claim_all([path])[0]

    def claim_all(self, paths: list[Path]) -> list[str | None]:
        """:meth:`claim` for several files, with one commit before the renames and one after."""
        planned: list[tuple[Path, str]] = []
        with self.ledger.transaction():
            for path in paths:
                self.candidates.pop(path, None)
                source = path.relative_to(self.areas.inbox).as_posix()
                suffix = path.suffix.lower() if len(path.suffix) <= 6 and path.suffix[1:].isalnum() else ""
                claim = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}{suffix}"
                self.ledger.add(claim, source)
                planned.append((path, claim))
        taken: list[str | None] = []
        for path, claim in planned:
            try:
                os.rename(path, self.areas.processing / claim)
            except FileNotFoundError:  # another watcher won the race: nothing to do
                taken.append(None)
                continue
            except OSError as exc:
                log.warning("could not claim a file (%s)", exc.__class__.__name__)
                taken.append(None)
                continue
            taken.append(claim)
        with self.ledger.transaction():
            for (_, claim), took in zip(planned, taken, strict=True):
                if took is None:
                    self.ledger.forget(claim)
                else:
                    self.ledger.update(claim, state="claimed")
        for claim in filter(None, taken):
            self.stats.claimed += 1
            log.info("claimed %s", claim)
        return taken

    def refuse(self, path: Path, reason: str) -> str | None:
        """Move an inbox entry that is not a regular file (a symbolic link, a FIFO, a device) to the failed
        area with its reason, by renaming the entry itself: its target is never opened, a FIFO never read
        (which would block the watcher for good)."""
        self.candidates.pop(path, None)
        source = path.relative_to(self.areas.inbox).as_posix()
        claim = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        self.ledger.add(claim, source)
        try:
            os.rename(path, self.areas.processing / claim)
        except OSError:
            self.ledger.forget(claim)
            return None
        self.ledger.update(claim, state="done", status="failed", reason=reason)
        self.stats.claimed += 1
        row = self.ledger.get(claim)
        assert row is not None
        self.finish(row)
        return claim

    def _hash(self, c: Claim) -> Claim | None:
        """Hash once, in the processing area (nothing writes there); spot content already processed."""
        if c.sha256 is not None:
            return c
        path = self.areas.processing / c.claim
        try:
            sha = sha256_file(path)
        except FileNotFoundError:  # removed by someone else: nothing left to process, nothing to wait for
            log.warning("claim %s vanished from processing before it was read", c.claim)
            self.ledger.update(c.claim, state="finished", reason="vanished from processing before it was read")
            return None
        except OSError as exc:
            log.warning("claim %s cannot be read (%s)", c.claim, exc.__class__.__name__)
            return None
        self.ledger.update(c.claim, sha256=sha)
        c.sha256 = sha
        return c

    # ----------------------------------------------------------------------------------- dispatching

    def _due(self) -> list[Claim]:
        with self.ledger.transaction():  # hashes and duplicates of the whole round: one commit
            return self._due_claims()

    def _due_claims(self) -> list[Claim]:
        now = time.time()
        due: list[Claim] = []
        for c in self.ledger.in_state("claimed"):
            if c.not_before > now:
                continue
            hashed = self._hash(c)
            if hashed is None or hashed.sha256 is None:
                continue
            prior = self.ledger.document(hashed.sha256)
            if prior is not None and prior[2] != hashed.claim:
                self.ledger.done(hashed.claim, hashed.sha256, status="duplicate", document_id=prior[0],
                                 reason=f"same content as {prior[0] or 'an earlier file'}")
                continue
            if self.ledger.busy_with(hashed.sha256, hashed.claim):
                continue
            if any(d.sha256 == hashed.sha256 for d in due):
                continue  # identical twin in the same batch: it becomes a duplicate next round
            due.append(hashed)
        return due

    def dispatch(self) -> None:
        due = self._due()
        dispatcher = self.dispatcher
        if isinstance(dispatcher, FlowRunDispatcher):
            for c in due:
                self._submit(dispatcher, c)
            self._poll(dispatcher)
            return
        for start in range(0, len(due), self.opts.batch_size):
            if self.stop_event.is_set():
                return
            self._run_batch(dispatcher, due[start:start + self.opts.batch_size])
            self.finish_all()  # each batch's originals leave processing as soon as they are filed

    def _run_batch(self, dispatcher: BatchDispatcher, batch: list[Claim]) -> None:
        with self.ledger.transaction():
            for c in batch:
                self.ledger.update(c.claim, state="processing", attempts=c.attempts + 1)
        paths = [self.areas.processing / c.claim for c in batch]
        try:
            outcomes = dispatcher.run(paths)
        except (StorageError, DatabaseUnavailableError) as exc:
            # Storage and spool both refused (disk full, read-only, gone), or the records database went away
            # and stayed away: no document is to blame, so none is charged an attempt or moved. The documents
            # filed before it happened are recorded and finished (archived) now; the rest wait in processing
            # and the run stops (exit code 5 for storage, 7 for the database), so the next start takes them
            # once there is room again or the database is back.
            storage = isinstance(exc, StorageError)
            reason = "storage refused the filing" if storage else "the records database could not be reached"
            finished = {Path(o.input).name: o for o in exc.finished}
            with self.ledger.transaction():
                for c in batch:
                    if c.claim in finished:
                        self._record(c, finished[c.claim])
                    else:
                        self.ledger.update(c.claim, state="claimed", attempts=c.attempts, not_before=0,
                                           reason=reason)
            self.finish_all()
            if storage:
                log.error("storage refused the filing (%s); stopping, the files wait in processing", exc)
            else:
                log.error("%s", exc)
            raise
        except Exception as exc:  # server gone, a worker crashed: keep the files, try later
            if getattr(self._dispatcher, "broken", False):
                self._dispatcher = None  # a fresh pool next time
            with self.ledger.transaction():
                for c in batch:
                    self._retry_later(c, c.attempts + 1, f"processing failed ({exc.__class__.__name__})")
            return
        by_input = {Path(o.input).name: o for o in outcomes}
        with self.ledger.transaction():
            self._record_all(batch, by_input)

    def _record_all(self, batch: list[Claim], by_input: dict[str, ProcessOutcome]) -> None:
        for c in batch:
            outcome = by_input.get(c.claim)
            if outcome is None:
                self._retry_later(c, c.attempts + 1, "no outcome returned")
                continue
            self._record(c, outcome)

    def _submit(self, dispatcher: FlowRunDispatcher, c: Claim) -> None:
        attempt = c.attempts + 1
        assert c.sha256 is not None
        # Written first: a crash right after the submission finds the run again by its idempotency key.
        self.ledger.update(c.claim, state="submitted", attempts=attempt)
        try:
            run_id = dispatcher.submit(self.areas.processing / c.claim, c.sha256, attempt)
        except Exception as exc:
            self._retry_later(c, attempt, f"could not submit ({exc.__class__.__name__})")
            return
        self.ledger.update(c.claim, flow_run_id=run_id)
        log.info("claim %s submitted as flow run %s", c.claim, run_id)

    def _poll(self, dispatcher: FlowRunDispatcher) -> None:
        for c in self.ledger.in_state("submitted"):
            path = self.areas.processing / c.claim
            if c.flow_run_id is None:  # crashed between the two writes: submit again, same key
                assert c.sha256 is not None
                try:
                    run_id = dispatcher.submit(path, c.sha256, c.attempts)
                except Exception as exc:
                    self._retry_later(c, c.attempts, f"could not submit ({exc.__class__.__name__})")
                    continue
                self.ledger.update(c.claim, flow_run_id=run_id)
                continue
            try:
                result = dispatcher.poll(path, c.flow_run_id)
            except Exception as exc:
                log.warning("cannot read flow run %s (%s)", c.flow_run_id, exc.__class__.__name__)
                continue
            if isinstance(result, ProcessOutcome):
                self._record(c, result)
            elif isinstance(result, str):
                self._retry_later(c, c.attempts, result)

    def _retry_later(self, c: Claim, attempts: int, reason: str) -> None:
        if attempts >= self.opts.max_attempts:
            assert c.sha256 is not None
            log.warning("claim %s gave up after %d attempts: %s", c.claim, attempts, reason)
            self.ledger.done(c.claim, c.sha256, status="failed", document_id=None,
                             reason=f"could not be processed after {attempts} attempts: {reason}")
            return
        delay = min(300.0, 2.0 ** attempts)
        log.warning("claim %s will be retried in %.0f s: %s", c.claim, delay, reason)
        self.ledger.update(c.claim, state="claimed", attempts=attempts, not_before=time.time() + delay,
                           reason=reason, flow_run_id=None)

    def _record(self, c: Claim, outcome: ProcessOutcome) -> None:
        assert c.sha256 is not None
        reason = None
        if outcome.status == "failed":
            path = str(self.areas.processing / c.claim)
            reason = (outcome.error or "could not be read").replace(f"{path}: ", "").replace(path, c.claim)
        self.ledger.done(c.claim, c.sha256, status=outcome.status, document_id=outcome.record_id, reason=reason)
        log.info("claim %s: %s as %s", c.claim, outcome.status, outcome.record_id)
        if self.opts.after_filing == "delete" and outcome.status != "failed" and not self._read_back(outcome, c.sha256):
            # Not confirmed in storage (spooled, or not found): the original is kept in the archive.
            row = self.ledger.get(c.claim)
            assert row is not None
            self.ledger.update(c.claim, final_path=str(self._destination(row)))
            log.warning("claim %s: its stored copy could not be read back yet; the original is archived, "
                        "not deleted", c.claim)

    def _read_back(self, outcome: ProcessOutcome, sha256: str) -> bool:
        """Is the original's stored copy in storage itself (not the spool), byte for byte? Only then may
        ``after_filing: delete`` remove the original."""
        if self._storage is None:
            from frontdesk.storage import open_storage

            self._storage = open_storage(self.settings).backend
        for obj in outcome.stored:
            if obj.sha256 != sha256:
                continue
            try:
                data = self._storage.get_bytes(obj.key)
            except Exception as exc:  # unreachable, missing: not confirmed
                log.info("read-back of %s failed (%s)", obj.key, exc.__class__.__name__)
                continue
            if hashlib.sha256(data).hexdigest() == sha256:
                return True
        return False

    # ------------------------------------------------------------------------------------- finishing

    def finish_all(self) -> None:
        self._finish(self.ledger.in_state("done"))

    def finish(self, c: Claim) -> None:
        """Move the original out of processing: archive (or delete) after a confirmed filing, failed
        area with a reason file otherwise. Safe to repeat after a crash at any point."""
        self._finish([c])

    def _finish(self, claims: list[Claim]) -> None:
        """Where each file goes is committed first (one commit for all), then the files move, then they
        are marked finished (one more commit): a crash in between repeats the moves, which are idempotent."""
        if not claims:
            return
        with self.ledger.transaction():
            for c in claims:
                if c.final_path is None and (c.status == "failed" or self.opts.after_filing != "delete"):
                    c.final_path = str(self._destination(c))
                    self.ledger.update(c.claim, final_path=c.final_path)
        finals: list[Path | None] = []
        for c in claims:
            src = self.areas.processing / c.claim
            if c.status == "failed":
                finals.append(self._move_failed(c, src))
            elif self.opts.after_filing == "delete" and c.final_path is None:  # read back: confirmed
                src.unlink(missing_ok=True)
                finals.append(None)
            else:
                finals.append(self._move_archive(c, src))
            receipt_path(src).unlink(missing_ok=True)
        with self.ledger.transaction():
            for c, final in zip(claims, finals, strict=True):
                self.ledger.update(c.claim, state="finished", final_path=str(final) if final else None)
        for c in claims:
            self.stats.finished[c.status or "?"] = self.stats.finished.get(c.status or "?", 0) + 1

    def _destination(self, c: Claim) -> Path:
        if c.status == "failed":
            return self.areas.failed / failed_id(c.claim) / c.claim
        now = datetime.now(UTC)
        folder = self.areas.archive / f"{now:%Y}" / f"{now:%m}"
        name = c.document_id or Path(c.claim).stem
        if c.status == "duplicate":
            name = f"{name}-duplicate-{Path(c.claim).stem}"
        dest = folder / f"{name}{Path(c.claim).suffix}"
        if dest.exists() and sha256_file(dest) != c.sha256:  # another file holds the name: not ours
            dest = folder / f"{name}-{Path(c.claim).stem}{Path(c.claim).suffix}"
        return dest

    def _move_archive(self, c: Claim, src: Path) -> Path | None:
        assert c.final_path is not None
        dest = Path(c.final_path)
        if not src.exists():  # moved before a crash
            return dest if dest.exists() else None
        if dest.exists() and sha256_file(dest) == c.sha256:
            src.unlink()
            return dest
        _move(src, dest)
        return dest

    def _move_failed(self, c: Claim, src: Path) -> Path | None:
        """``failed/<id>/<id>.<ext>`` with ``reason.txt`` beside it. The id is the claim's opaque name:
        staff often name files after the patient, so the original name stays in the ledger (a protected
        local store) and ``frontdesk watch --failed`` shows it on the staff's terminal, never here."""
        assert c.final_path is not None
        dest = Path(c.final_path)
        item = failed_id(c.claim)
        moved = os.path.lexists(src)  # a refused symbolic link is moved as a link, never followed
        if moved:
            _move(src, dest)
        text = (f"Frontdesk could not process this file.\nReason: {c.reason or 'unknown'}\n"
                f"Failed item: {item}\nRecord: {c.document_id or '-'}\nSHA-256: {c.sha256}\n"
                f"When: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
                "The name the file had in the inbox is not written here (names often carry patient names);\n"
                "`frontdesk watch --failed` lists it for this item.\n")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest.parent / "reason.txt", text)
        if moved:  # once per item, not again on a recovery
            log.warning("failed %s: %s (see %s)", item, c.reason or "unknown", dest.parent)
        return dest if dest.exists() else None

    # -------------------------------------------------------------------------------------- recovery

    def recover(self) -> None:
        """Put every row and every file back on a path to a final state after a crash."""
        for c in self.ledger.unfinished():
            path = self.areas.processing / c.claim
            if c.state == "claiming":
                if path.exists():
                    self.ledger.update(c.claim, state="claimed")
                else:  # the rename never happened; the file (if any) is still in the inbox
                    self.ledger.forget(c.claim)
            elif c.state in ("claimed", "processing"):
                if path.exists():
                    self.ledger.update(c.claim, state="claimed", not_before=0)
                else:
                    log.warning("claim %s vanished from processing", c.claim)
                    self.ledger.update(c.claim, state="finished", reason="vanished from processing")
            elif c.state == "submitted" and not isinstance(self.dispatcher, FlowRunDispatcher):
                # Submitted by a deployment-mode run; this run processes in-process: same content, same
                # document id, so filing it again overwrites nothing new.
                self.ledger.update(c.claim, state="claimed", flow_run_id=None)
            elif c.state == "done":
                self.finish(self.ledger.get(c.claim) or c)
        known = {c.claim for c in self.ledger.unfinished()}
        for p in sorted(self.areas.processing.iterdir()):
            if p.is_file() and not is_ignored(p.name) and p.name not in known and self.ledger.get(p.name) is None:
                log.warning("adopting unknown file %s in processing", p.name)
                self.ledger.add(p.name, p.name, state="claimed")

    # ---------------------------------------------------------------------------------------- running

    def pending(self) -> bool:
        return bool(self.candidates) or bool(self.ledger.unfinished())

    def tick(self) -> None:
        if self.clock() - self._last_rescan >= self.opts.rescan_seconds:
            self.rescan()
        ready = self.ready()
        if ready and not self.stop_event.is_set():
            self.claim_all(ready)
        self.dispatch()
        self.finish_all()

    def run(self, *, once: bool = False, install_signals: bool = True) -> Stats:
        """Watch until stopped (SIGTERM, SIGINT, ``stop_event``). With ``once``: take what is in the inbox
        now, wait until it is all finished, and return."""
        self.lock_inbox()
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        try:
            return self._run(once)
        finally:
            self.unlock_inbox()

    def lock_inbox(self) -> None:
        """One watcher per inbox: an exclusive lock (flock) on the inbox folder itself, held while this
        watcher runs and dropped by the kernel when its process dies (no stale lock after a crash, no lock
        file for staff to wonder about). A second watcher is refused, so no file is claimed, recovered or
        processed by two."""
        import fcntl

        if self._lock_fd is not None:
            return
        fd = os.open(self.areas.inbox, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InboxInUseError("another watcher is already watching this inbox; stop it first, or give "
                                  "this one its own inbox") from None
        self._lock_fd = fd

    def unlock_inbox(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _run(self, once: bool) -> Stats:
        self.recover()
        self.rescan()
        log.info("watching %s", "the inbox" + (" (polling)" if self.opts.polling else ""))
        try:
            if once:
                while not self.stop_event.is_set():
                    self.tick()
                    if not self.pending():
                        break
                    self.stop_event.wait(0.2)
                return self.stats
            self._watch_loop()
        finally:
            self.ledger.close()
            close = getattr(self._dispatcher, "close", None)
            if close is not None and self._owns_dispatcher:  # a caller's dispatcher may serve other runs
                close()
        return self.stats

    def _watch_loop(self) -> None:
        import watchfiles

        self.tick()
        tick_ms = 500
        for changes in watchfiles.watch(
            self.areas.inbox, recursive=self.opts.recursive, force_polling=self.opts.polling or None,
            poll_delay_ms=int(self.opts.poll_interval_seconds * 1000), rust_timeout=tick_ms,
            yield_on_timeout=True, stop_event=self.stop_event, raise_interrupt=False,
            debounce=200, step=50, ignore_permission_denied=True,
        ):
            for change, name in changes:
                if change != watchfiles.Change.deleted:
                    self.notice(Path(name))
            self.tick()
            if self.stop_event.is_set():
                break


def _special_kind(mode: int) -> str | None:
    """What an inbox entry is when it is no file to read (None for regular files and folders)."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _move(src: Path, dest: Path) -> None:
    """Rename when on one filesystem; else copy, fsync, and remove (archive may be elsewhere)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except OSError as exc:
        import errno
        import shutil

        if exc.errno != errno.EXDEV:
            raise
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
        shutil.copy2(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        src.unlink()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

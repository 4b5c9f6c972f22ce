"""Responses from the clearinghouse (271, 999, 277CA) taken through the document pipeline: the
clearinghouse inbox, ``frontdesk eligibility --responses`` and ``frontdesk claims --acknowledgment`` all
hand their files to :class:`frontdesk.pipeline.Pipeline`, the same path as a response dropped in the
watched folder. So there is one way a response is recognised, filed (reserve, store, complete) and
applied (:mod:`frontdesk.claims.responses`, in the transaction that completes the document), and the
same file read twice by any of these paths is a duplicate of the first.

Here, above :mod:`frontdesk.claims` (which the pipeline uses) and beside the pipeline, so no import
goes round in a circle.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from frontdesk.claims import eligibility
from frontdesk.claims.store import write_private
from frontdesk.db import Database
from frontdesk.db.claims_models import X12Batch
from frontdesk.settings import Settings
from frontdesk.storage import Storage

log = logging.getLogger("frontdesk.clearinghouse")


@dataclass
class ResponsesRun:
    batch_id: str | None
    results: list[eligibility.CoverageResult]
    unmatched: int = 0
    letters_queued: int = 0
    already_read: bool = False  # the same file was read before: nothing recorded twice

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {s.value: 0 for s in eligibility.CoverageStatus}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def as_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "summary": self.summary(), "unmatched": self.unmatched,
                "letters_queued": self.letters_queued, "already_read": self.already_read,
                "results": [r.as_json() for r in self.results]}


def take_response(settings: Settings, path: Path, db: Database, storage: Storage, *,
                  today: date | None = None, label: str | None = None) -> tuple[Any, X12Batch | None]:
    """One response file through the document pipeline (the same path as the watched folder): recognised,
    filed like any document, applied once. Returns the pipeline's work and the batch it recorded (for a
    file read before, the earlier batch; ``work.status`` is then ``duplicate``). A malformed file is
    filed under ``failed/`` and raises :class:`~frontdesk.claims.x12.X12Error` naming it by id."""
    from frontdesk.claims.x12 import X12Error
    from frontdesk.pipeline import Pipeline

    pipeline = Pipeline(settings, storage=storage, db=db, today=today)
    work = pipeline.intake(Path(path))
    if work.status == "failed":
        reason = (work.error or "could not be read").replace(f"{path}: ", "").split("\n")[0]
        raise X12Error(work.document_id or label or Path(path).name, reason)
    if work.sha256 is None:
        raise X12Error(label or Path(path).name, work.error or "could not be read")
    with db.begin() as s:
        batch = s.scalars(select(X12Batch).where(X12Batch.direction == "in", X12Batch.sha256 == work.sha256)
                          .order_by(X12Batch.created_at)).first()
        if batch is not None:
            s.expunge(batch)
    return work, batch


def read_responses(settings: Settings, path: Path, db: Database, storage: Storage, *,
                   today: date | None = None, label: str | None = None) -> ResponsesRun:
    """Read a 271 file: each answer goes on the patient's record with the date checked; an inactive
    coverage queues the missing-insurance letter (once per patient while one is pending). The file goes
    through the document pipeline like a 271 dropped in the watched folder."""
    from frontdesk.claims.x12 import X12Error
    from frontdesk.db.claims_models import EligibilityRequest as RequestRow

    work, batch = take_response(settings, path, db, storage, today=today, label=label)
    if work.document_type != "x12_271" and (work.result is None or work.result.document_type != "x12_271"):
        raise X12Error(work.document_id or Path(path).name, "not a 271 eligibility response (a response of "
                       "another kind is filed and applied as what it is)")
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    results = eligibility.read_271(data.decode("latin-1"), work.document_id or "271") if data else []
    run = ResponsesRun(batch.id if batch else None, results, already_read=work.status == "duplicate")
    counts = (batch.counts or {}) if batch is not None else {}
    if not run.already_read:
        run.unmatched, run.letters_queued = int(counts.get("unmatched", 0)), int(counts.get("letters_queued", 0))
    traces = [r.trace for r in results if r.trace]
    if traces:
        with db.begin() as s:
            owners = {t: pid for t, pid in s.execute(select(RequestRow.trace, RequestRow.patient_id)
                                                     .where(RequestRow.trace.in_(traces)))}
        for r in results:
            r.patient_id = owners.get(r.trace or "")
        if run.already_read:
            run.unmatched = sum(1 for r in results if r.patient_id is None)
    return run


def read_999(settings: Settings, path: Path, db: Database, storage: Storage) -> dict[str, Any]:
    """A 999 acknowledgment, through the document pipeline: accepted batches are marked accepted;
    rejected transactions put a flag on each claim the error points at (by segment position), or on
    every claim of the batch (:mod:`frontdesk.claims.responses`)."""
    from frontdesk.claims.x12 import X12Error

    work, batch = take_response(settings, path, db, storage)
    kind = work.result.document_type if work.result is not None else work.document_type
    if kind != "x12_999":
        raise X12Error(work.document_id or Path(path).name, "not a 999 acknowledgment (a response of another "
                       "kind is filed and applied as what it is)")
    if work.status == "duplicate":
        return {"accepted": 0, "flagged": 0, "already_read": True}
    counts = (batch.counts or {}) if batch is not None else {}
    return {"accepted": int(counts.get("accepted", 0)), "flagged": int(counts.get("flagged", 0)),
            "already_read": False}


# --- the clearinghouse inbox ---------------------------------------------------------------------------------

RESPONSE_SUFFIXES = (".x12", ".edi", ".txt", ".271", ".999", ".277")


@dataclass
class InboxRun:
    read: dict[str, int] = field(default_factory=dict)  # x12_271 / x12_999 / x12_277: files read
    failed: list[str] = field(default_factory=list)  # "<file>: reason" (file names are the clearinghouse's)
    letters_queued: int = 0
    claims_flagged: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"read": dict(self.read), "failed": list(self.failed), "letters_queued": self.letters_queued,
                "claims_flagged": self.claims_flagged}


def document_type(path: Path) -> str | None:
    """x12_271, x12_999 or x12_277 from the file's first ST segment; None when it is not X12."""
    from frontdesk.claims.x12 import X12Error, split_segments

    try:
        head = path.read_bytes()[:4096].decode("latin-1")
        segments, _ = split_segments(head, path.name)
    except (X12Error, OSError):
        return None
    st = next((s for s in segments if s.id == "ST"), None)
    return {"271": "x12_271", "999": "x12_999", "277": "x12_277"}.get(st[1]) if st is not None else None


def read_inbox(settings: Settings, db: Database, storage: Storage, *, today: date | None = None) -> InboxRun:
    """Every response file in the clearinghouse inbox, handed to the document pipeline one by one (the
    same path as a response dropped in the watched folder): 271s update coverage, 999s accept or flag
    claims, 277CAs accept or reject claims. A file read is moved to ``done/``; one that cannot be read goes
    to ``failed/`` with a ``.reason.txt`` (naming it by document id), and never stops the others."""
    from frontdesk.exceptions import FrontdeskError
    from frontdesk.pipeline import Pipeline

    inbox = settings.claims.clearinghouse.inbox
    run = InboxRun()
    if not inbox.is_dir():
        return run
    pipeline: Pipeline | None = None
    for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in RESPONSE_SUFFIXES):
        kind = document_type(path)
        reason: str | None = None
        try:
            if kind is None:
                raise ValueError("not a 271, 999 or 277 X12 file")
            pipeline = pipeline or Pipeline(settings, storage=storage, db=db, today=today)
            work = pipeline.intake(path)
            if work.status == "failed":
                reason = (f"{work.document_id}: " if work.document_id else "") + \
                    (work.error or "could not be read").replace(f"{path}: ", "").split("\n")[0]
            elif work.status != "duplicate":
                with db.begin() as s:
                    batch = s.scalars(select(X12Batch).where(X12Batch.direction == "in",
                                                             X12Batch.sha256 == work.sha256)).first()
                    counts = dict(batch.counts or {}) if batch is not None else {}
                run.letters_queued += int(counts.get("letters_queued", 0))
                run.claims_flagged += int(counts.get("flagged", 0)) + int(counts.get("rejected", 0))
        except (FrontdeskError, ValueError) as exc:
            reason = str(exc).split("\n")[0]
        if reason is not None:
            run.failed.append(f"{path.name}: {reason}")
            dest = inbox / "failed" / path.name
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(path, dest)
            write_private(dest.with_name(dest.name + ".reason.txt"), (reason + "\n").encode())
            log.warning("clearinghouse inbox: a file was set aside: %s", reason)
            continue
        assert kind is not None
        run.read[kind] = run.read.get(kind, 0) + 1
        dest = inbox / "done" / path.name
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(path, dest)
    return run

"""The console's Mail page: what waits for the next mail batch, past batches and their state, and the
actions on them (build a batch, download its PDF and manifest, mark it mailed, void or re-issue it).

Every action calls the same core functions as ``frontdesk mail`` (:mod:`frontdesk.letters.mail`): there
is no second way of building or mailing a batch, and the audit events they write name the signed-in
person (:func:`frontdesk.audit.acting_as`). Views are audited here: the pending list and a batch's
pieces show names and addresses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from frontdesk import audit
from frontdesk.exceptions import FrontdeskError

if TYPE_CHECKING:
    from frontdesk.console.app import Console
    from frontdesk.users import SignedIn

SignedInFn = Callable[..., "SignedIn"]
PostedFn = Callable[..., Awaitable[tuple["SignedIn", dict[str, str]]]]

KIND_NAMES = {"missing_insurance": "Missing-insurance letter", "incomplete_intake": "Incomplete-form letter",
              "appointment_reminder": "Appointment reminder", "welcome": "Welcome letter",
              "patient_statement": "Statement"}
BATCH_STATES = {"open": ("Being built", "warn"), "submitted": ("Ready to print and mail", "warn"),
                "mailed": ("Mailed", "ok"), "void": ("Voided", "")}
BUILD_KINDS = {"all": "letters and statements", "letters": "letters only", "statements": "statements only"}
#: Pending pieces shown per page: a backlog of thousands is listed a page at a time.
PAGE_SIZE = 50


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind.replace("_", " ").capitalize())


def router(con: Console, signed_in: SignedInFn, posted: PostedFn) -> APIRouter:
    """The Mail page's routes over ``con`` (the console's shared state and its sign-in checks)."""
    from frontdesk.letters import mail as core

    r = APIRouter()
    settings = con.settings
    con.env.filters.setdefault("mailkind", kind_name)

    def refused(request: Request, who: SignedIn, title: str, exc: Exception) -> Response:
        return con.render("message.html", request, who, status=409, title=title, message=str(exc))

    @r.get("/mail", response_class=HTMLResponse)
    def mail_page(request: Request) -> Response:
        """Pending pieces (with whether their address will do), batches not yet mailed first, and what
        to pull from a printed stack."""
        from frontdesk.db.models import Patient
        from frontdesk.letters.addresses import check_address

        who = signed_in(request)
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        with con.view(who) as s:
            pieces, total = core.pending_page(s, settings, "all", offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
            names = {p.id: f"{p.last_name}, {p.first_name}" for p in s.scalars(
                select(Patient).where(Patient.id.in_(sorted({x.patient_id for x in pieces if x.patient_id}))))}
            rows = []
            for p in pieces:
                problem = check_address(p.recipient, p.address_lines)
                rows.append({"id": p.piece_id, "kind": p.kind, "table": p.table, "patient_id": p.patient_id,
                             "patient": names.get(p.patient_id or "", ""), "recipient": p.recipient,
                             "address": ", ".join(p.address_lines), "problem": problem.reason if problem else None,
                             "has_pdf": p.storage_key is not None})
            for pid in sorted({x.patient_id for x in pieces if x.patient_id}):
                audit.record(s, "read", "patient", pid, patient_id=pid, detail="mail page: pending pieces")
            audit.record(s, "read", "mail_batch", None,
                         detail=f"mail page: {len(pieces)} of {total} pending pieces (page {page})")
        batches = core.list_batches(con.db, limit=30)
        to_pull = core.withdrawn_pieces(con.db)
        pages = max(1, -(-total // PAGE_SIZE))
        return con.render("mail.html", request, who, pending=rows, total=total, page=min(page, pages), pages=pages,
                          first=(page - 1) * PAGE_SIZE + 1, batches=batches, to_pull=to_pull,
                          states=BATCH_STATES, kinds=BUILD_KINDS, preview=None)

    @r.post("/mail/preview", response_class=HTMLResponse)
    async def mail_preview(request: Request) -> Response:
        """A dry run: what a batch would hold and what would be held back, recording nothing."""
        who, form = await posted(request)
        kind = form.get("kind", "all") if form.get("kind") in BUILD_KINDS else "all"
        try:
            with audit.acting_as(who.name):
                summary = core.run_mail(con.db, con.storage, settings, kind=kind, dry_run=True)
        except FrontdeskError as exc:
            return refused(request, who, "No preview", exc)
        with con.view(who) as s:
            audit.record(s, "read", "mail_batch", None, detail=f"mail preview: {summary.items} pieces, "
                                                              f"{len(summary.held)} held")
        return con.render("mail_preview.html", request, who, summary=summary, kind=kind, kinds=BUILD_KINDS)

    @r.post("/mail/build")
    async def mail_build(request: Request) -> Response:
        who, form = await posted(request)
        kind = form.get("kind", "all") if form.get("kind") in BUILD_KINDS else "all"
        try:
            with audit.acting_as(who.name):
                summary = core.run_mail(con.db, con.storage, settings, kind=kind)
        except FrontdeskError as exc:
            return refused(request, who, "No batch built", exc)
        if summary.batch_id is None:
            return con.render("message.html", request, who, status=200, title="Nothing to mail",
                              message=(f"No piece could go out: {len(summary.held)} held back (see the Mail page)."
                                       if summary.held else "There is nothing waiting to be mailed."))
        return RedirectResponse(f"/mail/batches/{summary.batch_id}", status_code=303)

    @r.get("/mail/batches/{batch_id}", response_class=HTMLResponse)
    def batch_page(request: Request, batch_id: str) -> Response:
        from frontdesk.db.letters_models import MailBatchDetail, MailPiece
        from frontdesk.db.models import Letter, MailBatch, MailItem, Patient, Statement

        who = signed_in(request)
        with con.view(who) as s:
            batch, detail = s.get(MailBatch, batch_id), s.get(MailBatchDetail, batch_id)
            if batch is None or detail is None:
                return con.render("message.html", request, who, status=404, title="Not found",
                                  message="There is no such mail batch.")
            rows = []
            for mp, item in s.execute(select(MailPiece, MailItem).join(MailItem, MailItem.id == MailPiece.mail_item_id)
                                      .where(MailPiece.batch_id == batch_id).order_by(MailPiece.position)):
                piece: Letter | Statement | None = (s.get(Letter, mp.piece_id) if item.letter_id
                                                    else s.get(Statement, mp.piece_id))
                patient = s.get(Patient, piece.patient_id) if piece is not None and piece.patient_id else None
                rows.append({"position": mp.position, "id": mp.piece_id, "kind": mp.kind, "pages": mp.pages,
                             "first_page": mp.first_page, "sheets": mp.sheets, "envelope": mp.envelope,
                             "address_sheet": mp.address_sheet, "withdrawn": item.status == "void",
                             "patient_id": patient.id if patient else None,
                             "patient": f"{patient.last_name}, {patient.first_name}" if patient else ""})
                if patient is not None:
                    audit.record(s, "read", "patient", patient.id, patient_id=patient.id,
                                 detail=f"mail batch {batch_id}")
            audit.record(s, "read", "mail_batch", batch_id, detail=f"{len(rows)} pieces shown")
            info = {"id": batch.id, "status": batch.status, "created_at": batch.created_at,
                    "submitted_at": batch.submitted_at, "mailed_at": batch.mailed_at, "kind": detail.kind,
                    "pieces": detail.items, "pages": detail.pages, "sheets": detail.sheets, "held": detail.held,
                    "reissue_of": detail.reissue_of, "void_reason": detail.void_reason,
                    "voided_at": detail.voided_at, "has_pdf": batch.storage_key is not None,
                    "has_manifest": detail.manifest_key is not None}
            reissued_by = s.scalars(select(MailBatchDetail.batch_id)
                                    .where(MailBatchDetail.reissue_of == batch_id)).first()
        return con.render("mail_batch.html", request, who, b=info, rows=rows, states=BATCH_STATES,
                          reissued_by=reissued_by)

    def _batch_file(request: Request, batch_id: str, what: str) -> Response:
        from frontdesk.db.letters_models import MailBatchDetail
        from frontdesk.db.models import MailBatch

        who = signed_in(request)
        with con.view(who) as s:
            batch, detail = s.get(MailBatch, batch_id), s.get(MailBatchDetail, batch_id)
            key = None
            if batch is not None and detail is not None:
                key = batch.storage_key if what == "pdf" else detail.manifest_key
            if key is None:
                return Response(status_code=404)
            audit.record(s, "export", "mail_batch", batch_id, detail=f"{what} downloaded from the console")
        data = con.storage.get_bytes(key)
        if what == "pdf":
            return Response(data, media_type="application/pdf",
                            headers={"Content-Disposition": f'inline; filename="{batch_id}.pdf"'})
        return Response(data, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{batch_id}-manifest.csv"'})

    @r.get("/mail/batches/{batch_id}/pdf")
    def batch_pdf(request: Request, batch_id: str) -> Response:
        return _batch_file(request, batch_id, "pdf")

    @r.get("/mail/batches/{batch_id}/manifest")
    def batch_manifest(request: Request, batch_id: str) -> Response:
        return _batch_file(request, batch_id, "manifest")

    @r.post("/mail/batches/{batch_id}/mailed")
    async def batch_mailed(request: Request, batch_id: str) -> Response:
        who, _form = await posted(request)
        try:
            with audit.acting_as(who.name):
                core.mark_mailed(con.db, batch_id)
        except FrontdeskError as exc:
            return refused(request, who, "Not marked as mailed", exc)
        return RedirectResponse(f"/mail/batches/{batch_id}", status_code=303)

    @r.post("/mail/batches/{batch_id}/void")
    async def batch_void(request: Request, batch_id: str) -> Response:
        who, form = await posted(request)
        reason = " ".join(form.get("reason", "").split())[:200]
        if len(reason) < 3:
            return refused(request, who, "Not voided", ValueError("Say why the batch is voided (a few words)."))
        try:
            with audit.acting_as(who.name):
                if form.get("reissue") == "yes":
                    summary = core.reissue_batch(con.db, con.storage, settings, batch_id, reason=reason)
                    if summary.batch_id:
                        return RedirectResponse(f"/mail/batches/{summary.batch_id}", status_code=303)
                else:
                    core.void_batch(con.db, settings, batch_id, reason=reason)
        except FrontdeskError as exc:
            return refused(request, who, "Not voided", exc)
        return RedirectResponse(f"/mail/batches/{batch_id}", status_code=303)

    return r

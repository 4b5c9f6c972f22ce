"""The console's web application. See :mod:`frontdesk.console` for what it promises.

Security, in one place:

* Sessions: an HttpOnly, SameSite=Strict cookie (Secure unless ``console.secure_cookies`` is off for a
  plain http://127.0.0.1 set-up) holding a random token; expiry is decided on the server
  (:func:`frontdesk.users.session_user`).
* CSRF: every POST carries the session's token in a hidden field (the sign-in form a separate one bound
  to a short-lived cookie); a missing or wrong token is refused with 403 and changes nothing.
* No patient data in URLs: paths carry opaque ids (doc-…, pat-…); searches are POSTed.
* Headers: a CSP without inline script or style, frame-ancestors 'none', nosniff, no-referrer, and
  ``Cache-Control: no-store`` on every response.
* Logs: uvicorn's access log is off; errors are logged by id only.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk import actions, audit, crops, records, review_queue, users
from frontdesk.db.models import (
    Arrival,
    AuditEvent,
    Document,
    FlagRow,
    InsuranceCard,
    Letter,
    Patient,
    StoredObjectRow,
    utcnow,
)
from frontdesk.exceptions import FrontdeskError
from frontdesk.settings import Settings

log = logging.getLogger("frontdesk.console")
HERE = Path(__file__).parent
COOKIE = "fd_session"
LOGIN_COOKIE = "fd_login"
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "frame-src 'self'; object-src 'self'; form-action 'self'; base-uri 'none'; "
                                "frame-ancestors 'self'"),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
DOC_TYPES = {"intake_form": "Intake form", "insurance_card": "Insurance card", "correspondence": "Letter",
             "unknown": "Unknown document", None: "Document"}
OUTCOMES = {"filed": "Filed", "needs_review": "Needs review", "failed": "Failed", "dismissed": "Dismissed",
            None: "In progress"}


class Denied(Exception):
    """Not signed in (redirect to sign-in), or not allowed (403)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(HERE / "templates")),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = lambda d: "" if d is None else d.astimezone().strftime("%b %d, %Y %H:%M")
    env.filters["day"] = lambda d: "" if d is None else d.strftime("%b %d, %Y")
    env.filters["doctype"] = lambda t: DOC_TYPES.get(t, str(t).replace("_", " ").capitalize())
    env.filters["outcome"] = lambda o: OUTCOMES.get(o, str(o).replace("_", " ").capitalize())
    env.filters["pct"] = lambda c: f"{round(float(c) * 100)}%"
    return env


class Console:
    """What the pages share: settings, the records database, storage, a pipeline for reviews."""

    def __init__(self, settings: Settings) -> None:
        from frontdesk.pipeline import Pipeline

        self.settings = settings
        self.pipeline = Pipeline(settings)
        self.db = self.pipeline.db
        self.storage = self.pipeline.storage
        self.vocab = self.pipeline.reader.vocabulary
        self.env = _environment()
        self.review_lock = threading.Lock()  # the pipeline's letter batch is one at a time
        cs = settings.console
        self.idle = timedelta(minutes=cs.idle_minutes)
        self.longest = timedelta(hours=cs.session_hours)
        self.deadline = timedelta(hours=cs.review_deadline_hours)

    def render(self, name: str, request: Request, who: users.SignedIn | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(who=who, csrf=who.csrf_token if who else "",
                                                  path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    @contextmanager
    def view(self, who: users.SignedIn) -> Iterator[Session]:
        """A page that only shows: read in a look-only transaction (no write lock, so four people's pages
        are read side by side), then its audit events are written in one short transaction of their own.
        The page is returned only after they are committed: nothing is shown that is not audited."""
        from frontdesk.db.models import AuditEvent as _Event

        with audit.acting_as(who.name):
            with self.db.read() as s:
                yield s
                events = [o for o in s.new if isinstance(o, _Event)]
                for e in events:
                    s.expunge(e)
            if events:
                # One multi-row INSERT (a search or the Mail page audits every patient it lists): the
                # same rows as adding the objects, without the unit of work's per-row bookkeeping.
                from sqlalchemy import insert

                cols = ("at", "actor", "action", "object_type", "object_id", "patient_id", "detail")
                with self.db.begin() as w:
                    w.execute(insert(_Event), [{c: getattr(e, c) for c in cols} for e in events])

    @contextmanager
    def session(self, who: users.SignedIn | None = None) -> Iterator[Session]:
        if who is None:
            with self.db.begin() as s:
                yield s
            return
        with audit.acting_as(who.name), self.db.begin() as s:
            yield s


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:1_000_000]
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def create_app(settings: Settings) -> FastAPI:
    """The console for ``settings``; the records database is opened (and migrated) here."""
    app = FastAPI(title="Frontdesk console", docs_url=None, redoc_url=None, openapi_url=None)
    con = Console(settings)
    app.state.console = con

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        try:
            response: Response = await call_next(request)
        except Exception:
            log.exception("console error on %s %s", request.method, request.scope.get("route", None) and
                          request.scope["route"].path)
            response = HTMLResponse("<h1>Something went wrong</h1><p>The error was logged.</p>", status_code=500)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        if exc.status == 401:
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(f"<h1>Not allowed</h1><p>{exc.message or 'You cannot open this page.'}</p>",
                            status_code=exc.status)

    def signed_in(request: Request, *, admin: bool = False) -> users.SignedIn:
        token = request.cookies.get(COOKIE)
        # Most requests only read the session (its idle clock is restarted every few seconds, not on every
        # request): no write lock is taken for them, so four desks' pages do not queue behind each other.
        with con.db.read() as s:
            who = users.fresh_session_user(s, token, idle=con.idle, longest=con.longest)
        if who is None:
            with con.session() as s:
                who = users.session_user(s, token, idle=con.idle, longest=con.longest)
        if who is None:
            raise Denied(401)
        if admin and not who.is_admin:
            raise Denied(403, "This page is for administrators.")
        return who

    async def posted(request: Request, *, admin: bool = False) -> tuple[users.SignedIn, dict[str, str]]:
        who = signed_in(request, admin=admin)
        form = await _form(request)
        if not users.csrf_matches(who.csrf_token, form.get("csrf")):
            raise Denied(403, "The form was out of date or not sent from this console. Go back, reload and try again.")
        return who, form

    # --- static ------------------------------------------------------------------------------------------

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response(status_code=404)
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                        headers={"Cache-Control": "no-cache"})

    # --- signing in ----------------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, error: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        resp: Response = con.render("login.html", request, None, error=None, login_csrf=token)
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.console.secure_cookies,
                        max_age=1800, path="/login")
        return resp

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        if not expected or not users.csrf_matches(expected, form.get("csrf")):
            raise Denied(403, "The sign-in form was out of date. Reload the page and sign in again.")
        cs = settings.console
        with con.session() as s:
            outcome = users.login(s, form.get("name", ""), form.get("password", ""), client=_client(request),
                                  max_attempts=cs.login_attempts, window=timedelta(minutes=cs.login_window_minutes))
        if isinstance(outcome, users.LoginRefused):
            exc = outcome
            fresh = secrets.token_urlsafe(24)
            refused: Response = con.render("login.html", request, None, status=401, error=str(exc), login_csrf=fresh)
            refused.set_cookie(LOGIN_COOKIE, fresh, httponly=True, samesite="strict", secure=cs.secure_cookies,
                               max_age=1800, path="/login")
            return refused
        token, _who = outcome
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=cs.secure_cookies, path="/")
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await posted(request)
        with con.session() as s:
            users.logout(s, request.cookies.get(COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # --- Today ---------------------------------------------------------------------------------------------

    def today_context(s: Session) -> dict[str, Any]:
        start = datetime.combine(date.today(), datetime.min.time()).astimezone()
        n = lambda *w: s.scalar(select(func.count()).select_from(Document).where(*w)) or 0  # noqa: E731
        dupes = s.scalar(select(func.count()).select_from(Arrival).where(Arrival.outcome == "duplicate",
                                                                          Arrival.received_at >= start)) or 0
        counts = {"received": n(Document.received_at >= start),
                  "filed": n(Document.outcome == "filed", Document.received_at >= start),
                  "review": n(Document.outcome == "needs_review"),
                  "failed": n(Document.outcome == "failed"),
                  "duplicates": dupes,
                  "mail": s.scalar(select(func.count()).select_from(Letter).where(Letter.status == "pending")) or 0}
        waiting = review_queue.queue(s, deadline=con.deadline, limit=15)
        waiting_total, overdue = review_queue.waiting_counts(s, deadline=con.deadline)
        failed = actions.failed_documents(s, limit=10)
        unmatched = actions.unmatched_documents(s, limit=20)
        letters = list(s.execute(select(Letter, Patient).outerjoin(Patient, Letter.patient_id == Patient.id)
                                 .where(Letter.status == "pending").order_by(Letter.created_at).limit(20)))
        recent = list(s.execute(select(Document, Patient).outerjoin(Patient, Document.patient_id == Patient.id)
                                .where(Document.received_at >= start)
                                .order_by(Document.received_at.desc()).limit(15)))
        return {"counts": counts, "waiting": waiting, "waiting_total": waiting_total,
                "overdue": overdue, "failed": failed, "unmatched": unmatched,
                "letters": letters, "recent": recent}

    @app.get("/", response_class=HTMLResponse)
    def today(request: Request) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            ctx = today_context(s)
        return con.render("today.html", request, who, **ctx)

    @app.post("/search", response_class=HTMLResponse)
    async def search(request: Request) -> Response:
        """Search by name, date of birth or member ID. POSTed so the words never reach a URL or a log."""
        who, form = await posted(request)
        text = " ".join(form.get("q", "").split())[:200]
        with con.view(who) as s:
            results = search_patients(s, text)
        return con.render("search.html", request, who, results=results, query=text)

    def search_patients(s: Session, text: str) -> list[Patient]:
        from frontdesk.normalisers import parse_date

        if not text:
            return []
        found: dict[str, Patient] = {}
        dob = parse_date(text) if any(ch.isdigit() for ch in text) else None
        if dob is not None:
            for p in s.scalars(select(Patient).where(Patient.date_of_birth == dob,
                                                     ~Patient.match_key.startswith("merged|")).limit(100)):
                found[p.id] = p
        if any(ch.isdigit() for ch in text) and dob is None:
            member = "".join(ch for ch in text.upper() if ch.isalnum())
            from frontdesk.db.models import PatientField

            # Member IDs are stored normalised (upper-case letters and digits), as JSON strings.
            for p in s.scalars(select(Patient).join(PatientField, PatientField.patient_id == Patient.id)
                               .where(PatientField.key.in_(("insurance.primary.member_id",
                                                            "insurance.secondary.member_id")))
                               .where(func.cast(PatientField.value, _text()).like(f"%{member}%")).limit(100)):
                found[p.id] = p
        if not found and not any(ch.isdigit() for ch in text):
            for p in records.find_patients(s, text):
                if not p.match_key.startswith("merged|"):
                    found[p.id] = p
        else:
            for p in found.values():
                audit.record(s, "search", "patient", p.id, patient_id=p.id)
        if not found:
            audit.record(s, "search", "patient", None, detail="no match")
        return sorted(found.values(), key=lambda p: (p.last_name, p.first_name, p.id))

    # --- review queue --------------------------------------------------------------------------------------

    @app.get("/review", response_class=HTMLResponse)
    def review_list(request: Request) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            waiting = review_queue.queue(s, deadline=con.deadline, limit=200)
            total, overdue = review_queue.waiting_counts(s, deadline=con.deadline)
        return con.render("review_list.html", request, who, waiting=waiting, total=total, overdue=overdue)

    @app.get("/review/next")
    def review_next(request: Request) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            nxt = review_queue.next_document(s)
        return RedirectResponse(f"/review/{nxt}" if nxt else "/review", status_code=303)

    @app.get("/review/{doc_id}", response_class=HTMLResponse)
    def review_page(request: Request, doc_id: str) -> Response:
        who = signed_in(request)
        try:
            with con.view(who) as s:
                item = review_queue.load_item(s, doc_id, con.vocab, deadline=con.deadline)
                doc = s.get(Document, doc_id)
                waiting = doc is not None and doc.outcome == "needs_review"
                flags = list(s.scalars(select(FlagRow).where(FlagRow.document_id == doc_id, FlagRow.status == "open")))
                candidates = _candidates(s, doc_id) if doc is not None and doc.patient_id is None else []
                conflicts = actions.card_conflicts(s, doc_id, con.vocab) if waiting else []
        except review_queue.ReviewError:
            return con.render("message.html", request, who, status=404, title="Not found",
                              message="There is no such document to review.")
        return con.render("review.html", request, who, item=item, waiting=waiting, flags=flags,
                          candidates=candidates, saved=request.query_params.get("saved"), conflicts=conflicts)

    def _candidates(s: Session, doc_id: str) -> list[Patient]:
        """Patients a card or letter may belong to: same date of birth as read on it."""
        from frontdesk.normalisers import parse_date

        reading = records.extraction_result(s, doc_id)
        if reading is None:
            return []
        out: dict[str, Patient] = {}
        for key in ("insurance.primary.subscriber_date_of_birth", "correspondence.patient_date_of_birth",
                    "patient.date_of_birth"):
            v = reading.value(key)
            d = parse_date(v) if isinstance(v, str) else None
            if d is not None:
                for p in s.scalars(select(Patient).where(Patient.date_of_birth == d,
                                                         ~Patient.match_key.startswith("merged|")).limit(20)):
                    out[p.id] = p
        for p in out.values():
            audit.record(s, "search", "patient", p.id, patient_id=p.id, detail=f"attach candidates for {doc_id}")
        return list(out.values())

    @app.post("/review/{doc_id}")
    async def review_save(request: Request, doc_id: str) -> Response:
        who, form = await posted(request)
        decisions: dict[str, review_queue.Decision] = {}
        for name, choice in form.items():
            if not name.startswith("choice:"):
                continue
            key = name[len("choice:"):]
            if choice not in ("accept", "correct", "absent"):
                continue
            value = form.get(f"value:{key}")
            if choice == "accept" and value is not None and value.strip() != form.get(f"read:{key}", "").strip():
                choice = "correct"  # the person typed over what was read: that is a correction
            decisions[key] = review_queue.Decision(choice, value)  # type: ignore[arg-type]
        try:
            with audit.acting_as(who.name), con.review_lock:
                review_queue.decide(con.pipeline, doc_id, decisions)
        except review_queue.ReviewError as exc:
            return con.render("message.html", request, who, status=409, title="Not saved", message=str(exc))
        crops.forget(doc_id)
        from frontdesk.console.held import resume_held_review

        resume_held_review(con.db, settings, doc_id, who.name)  # a Prefect run holding it finishes
        with con.session(who) as s:
            nxt = review_queue.next_document(s, after=doc_id)
        target = f"/review/{nxt}" if nxt and form.get("then") != "stay" else f"/review/{doc_id}"
        return RedirectResponse(f"{target}?saved={doc_id}", status_code=303)

    @app.get("/crops/{doc_id}/{field}")
    def crop(request: Request, doc_id: str, field: str) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            doc = s.get(Document, doc_id)
            row = s.scalars(select(StoredObjectRow).where(StoredObjectRow.document_id == doc_id,
                                                          StoredObjectRow.role == "original")).first()
            if doc is None or row is None or (field != "page" and field not in con.vocab):
                return Response(status_code=404)
            audit.record(s, "read", "document", doc_id, patient_id=doc.patient_id, detail=f"crop of {field}")
            key, form, method = row.key, doc.form, doc.method
        try:
            png, _exact = crops.crop(doc_id, con.storage.get_bytes(key), suffix=Path(key).suffix.lower(),
                                     registry=con.pipeline.reader.registry, form=form,
                                     field=None if field == "page" else field, digital=method != "ocr")
        except (FrontdeskError, OSError, ValueError) as exc:
            log.warning("no crop for %s (%s)", doc_id, exc.__class__.__name__)
            return Response(status_code=404)
        return Response(png, media_type="image/png")

    # --- documents -----------------------------------------------------------------------------------------

    @app.get("/documents/{doc_id}/original")
    def original(request: Request, doc_id: str) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            doc = s.get(Document, doc_id)
            row = s.scalars(select(StoredObjectRow).where(StoredObjectRow.document_id == doc_id,
                                                          StoredObjectRow.role == "original")).first()
            if doc is None or row is None:
                return Response(status_code=404)
            audit.record(s, "read", "object", row.key, patient_id=doc.patient_id, detail="original viewed")
            key, ctype = row.key, row.content_type
        return Response(con.storage.get_bytes(key), media_type=ctype,
                        headers={"Content-Disposition": f'inline; filename="{doc_id}{Path(key).suffix}"'})

    @app.get("/letters/{letter_id}/pdf")
    def letter_pdf(request: Request, letter_id: str) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            letter = s.get(Letter, letter_id)
            if letter is None or letter.storage_key is None:
                return Response(status_code=404)
            audit.record(s, "read", "letter", letter.id, patient_id=letter.patient_id, detail="letter viewed")
            key = letter.storage_key
        return Response(con.storage.get_bytes(key), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{letter_id}.pdf"'})

    @app.post("/documents/{doc_id}/attach")
    async def attach(request: Request, doc_id: str) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                doc = actions.attach_document(s, doc_id, form.get("patient_id", ""), con.vocab)
                pid = doc.patient_id
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not attached", message=str(exc))
        return RedirectResponse(f"/patients/{pid}", status_code=303)

    @app.get("/failed", response_class=HTMLResponse)
    def failed(request: Request) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            docs = actions.failed_documents(s)
        return con.render("failed.html", request, who, docs=docs, retried=request.query_params.get("retried"))

    @app.post("/failed/{doc_id}/dismiss")
    async def failed_dismiss(request: Request, doc_id: str) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                actions.dismiss_failed(s, doc_id, form.get("reason", ""))
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not dismissed", message=str(exc))
        return RedirectResponse("/failed", status_code=303)

    @app.post("/flags/{flag_id}/dismiss")
    async def flag_dismiss(request: Request, flag_id: int) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                flag = actions.dismiss_flag(s, flag_id, form.get("reason", ""))
                back = f"/patients/{flag.patient_id}" if flag.patient_id else f"/review/{flag.document_id}"
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not dismissed", message=str(exc))
        return RedirectResponse(back, status_code=303)

    # --- patients ------------------------------------------------------------------------------------------

    @app.get("/patients/{patient_id}", response_class=HTMLResponse)
    def patient_page(request: Request, patient_id: str) -> Response:
        who = signed_in(request)
        with con.view(who) as s:
            view = records.show_patient(s, patient_id)
            if view is None:
                return con.render("message.html", request, who, status=404, title="Not found",
                                  message="There is no such patient.")
            p = view.patient
            sections: dict[str, list[tuple[str, str, Any]]] = {"Patient": [], "Primary insurance": [],
                                                               "Secondary insurance": [], "Emergency contact": []}
            order = {k: i for i, k in enumerate(con.vocab.fields)}
            for f in sorted(p.fields, key=lambda f: order.get(f.key, len(order))):
                if f.value in (None, ""):
                    continue  # a blank line says nothing a receptionist can use
                sec = ("Primary insurance" if f.key.startswith("insurance.primary") else
                       "Secondary insurance" if f.key.startswith("insurance.secondary") else
                       "Emergency contact" if f.key.startswith("emergency_contact") else "Patient")
                value: Any = f.value
                spec = con.vocab.fields.get(f.key)
                if spec is not None and spec.type == "date" and isinstance(value, str):
                    with suppress(ValueError):
                        value = date.fromisoformat(value).strftime("%m/%d/%Y")
                sections[sec].append((f.key, con.vocab.label(f.key), value))
            # Which sides of each coverage's card were filed (the values above are the card's or the form's).
            sides: dict[str, set[str]] = {}
            for card in s.scalars(select(InsuranceCard).where(InsuranceCard.patient_id == patient_id)):
                sides.setdefault(card.rank, set()).update(("front", "back") if card.side == "both" else (card.side,))
            for rank, seen in sides.items():
                title = "Secondary insurance" if rank == "secondary" else "Primary insurance"
                sections[title].append(("card", "Card on file", " and ".join(x for x in ("front", "back") if x in seen)))
            flags = list(s.scalars(select(FlagRow).where(FlagRow.patient_id == patient_id)
                                   .order_by(FlagRow.created_at.desc(), FlagRow.id.desc())))
            trail = list(s.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient_id)
                                   .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(100)))
            merges = actions.merges_of(s, patient_id)
            merged_into = next((m for m in merges if m.merged_id == patient_id and m.undone_at is None), None)
            return con.render("patient.html", request, who, p=p, sections=sections, docs=view.documents,
                              letters=view.letters, flags=flags, trail=trail, merges=merges,
                              merged_into=merged_into, editable=[(k, con.vocab.label(k)) for k in con.vocab.fields])

    @app.post("/patients/{patient_id}/correct")
    async def patient_correct(request: Request, patient_id: str) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                actions.correct_value(s, patient_id, form.get("key", ""), form.get("value"), con.vocab)
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not changed", message=str(exc))
        return RedirectResponse(f"/patients/{patient_id}", status_code=303)

    @app.post("/patients/{patient_id}/merge-preview", response_class=HTMLResponse)
    async def merge_preview(request: Request, patient_id: str) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                pv = actions.merge_preview(s, patient_id, form.get("other", "").strip())
                return con.render("merge.html", request, who, pv=pv, label=con.vocab.label)
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Cannot merge", message=str(exc))

    @app.post("/patients/{patient_id}/merge")
    async def merge(request: Request, patient_id: str) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                actions.merge_patients(s, patient_id, form.get("other", "").strip())
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not merged", message=str(exc))
        return RedirectResponse(f"/patients/{patient_id}", status_code=303)

    @app.post("/merges/{merge_id}/undo")
    async def merge_undo(request: Request, merge_id: str) -> Response:
        who, _form = await posted(request)
        try:
            with con.session(who) as s:
                m = actions.unmerge(s, merge_id)
                kept = m.kept_id
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not undone", message=str(exc))
        return RedirectResponse(f"/patients/{kept}", status_code=303)

    # --- worklist ------------------------------------------------------------------------------------------

    @app.get("/worklist", response_class=HTMLResponse)
    def worklist(request: Request) -> Response:
        """The pre-visit worklist for a day (a date is not patient data, so it may be in the URL)."""
        from frontdesk.checks.runner import default_visit_date

        who = signed_in(request)
        text = request.query_params.get("date") or ""
        try:
            day = date.fromisoformat(text) if text else default_visit_date(settings)
        except ValueError:
            day = default_visit_date(settings)
        try:
            with audit.acting_as(who.name):
                report = actions.worklist(settings, con.db, day)
        except FrontdeskError as exc:
            return con.render("worklist.html", request, who, day=day, report=None, problem=str(exc))
        return con.render("worklist.html", request, who, day=day, report=report, problem=None)

    from frontdesk.console import forms as forms_page  # bring your own form (issue 20): /admin/forms

    forms_page.install(app, con, signed_in, posted)

    # --- administration ------------------------------------------------------------------------------------

    @app.get("/admin/users", response_class=HTMLResponse)
    def admin_users(request: Request) -> Response:
        who = signed_in(request, admin=True)
        with con.view(who) as s:
            rows = users.list_users(s)
        return con.render("users.html", request, who, rows=rows, error=None)

    @app.post("/admin/users")
    async def admin_users_change(request: Request) -> Response:
        who, form = await posted(request, admin=True)
        try:
            with con.session(who) as s:
                if form.get("action") == "disable":
                    if form.get("name", "").strip().lower() == who.name:
                        raise users.UserError("you cannot disable yourself")
                    users.disable_user(s, form.get("name", ""))
                elif form.get("action") == "enable":
                    users.enable_user(s, form.get("name", ""))
                else:
                    users.add_user(s, form.get("name", ""), form.get("role", "staff"), form.get("password", ""))
        except users.UserError as exc:
            with con.session(who) as s:
                rows = users.list_users(s)
            return con.render("users.html", request, who, status=400, rows=rows, error=str(exc))
        return RedirectResponse("/admin/users", status_code=303)

    @app.get("/admin/audit", response_class=HTMLResponse)
    def admin_audit(request: Request) -> Response:
        who = signed_in(request, admin=True)
        with con.view(who) as s:
            rows = list(s.scalars(select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(300)))
            audit.record(s, "read", "audit_trail", None, detail=f"{len(rows)} events listed")
        return con.render("audit.html", request, who, rows=rows)

    from frontdesk.console import mail as mail_pages

    app.include_router(mail_pages.router(con, signed_in, posted))
    from frontdesk.console import failed as failed_pages

    app.include_router(failed_pages.router(con, signed_in, posted))
    from frontdesk.console import conflicts as conflict_pages

    app.include_router(conflict_pages.router(con, signed_in, posted))
    for name in con.env.list_templates(extensions=["html"]):
        con.env.get_template(name)  # compiled now (filters of every page known), not by the first visitor
    return app


def _text() -> Any:
    from sqlalchemy import String

    return String()


__all__ = ["create_app", "utcnow"]

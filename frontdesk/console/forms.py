"""The console's form page: bring your own form (issue 20, the page twin of ``frontdesk forms add``).

An administrator uploads the practice's own form (a fillable PDF with any field names, a flattened PDF,
or a scan of the blank form), sees every page with the proposed boxes drawn and numbered, and per box
the label found, the proposed key (a drop-down of the vocabulary's keys, preselected), how sure the
proposal is and why. Uncertain boxes and conflicts (two boxes on one key) are highlighted; a box can be
left out. Accepting writes the template to the first forms folder through the same core functions as
``forms add --accept --map`` (:mod:`frontdesk.form_uploads` runs them in a reading process), then the
page links to the ``forms check`` sheet.

Why administrators only: a template decides how every later copy of that form is read and filed, so it
is practice configuration, like the user list. A blank form holds no patient data, but the pages still
need a sign-in, and every view and change is audited with the person's name.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from frontdesk import audit, form_uploads, onboarding, users
from frontdesk.exceptions import FrontdeskError
from frontdesk.form_uploads import UploadRefused

ATTENTION = ("uncertain", "conflict")
STATUS_TEXT = {"proposed": "Proposed", "uncertain": "Unsure", "conflict": "Conflict", "unknown": "No key fits",
               "confirmed": "Chosen"}


def _default_id(filename: str) -> str:
    """A template id from the uploaded file's name (only ever used as a suggestion, never as a path)."""
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")[:60]
    return slug if slug and onboarding.TEMPLATE_ID.fullmatch(slug) else "practice_form"


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """The fields and the (first) file of a multipart/form-data body, parsed by the standard library."""
    if not content_type.lower().startswith("multipart/form-data"):
        return {}, None
    msg = BytesParser(policy=policy.HTTP).parsebytes(
        b"MIME-Version: 1.0\r\nContent-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    if not msg.is_multipart():
        return fields, None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            if upload is None and name == "form":
                upload = (str(filename), data)
        elif isinstance(name, str):
            fields[name] = data.decode("utf-8", "replace")[:1000]
    return fields, upload


def install(app: FastAPI, con: Any, signed_in: Callable[..., users.SignedIn],
            posted: Callable[..., Any]) -> None:
    """Add the form pages to the console ``app`` (one private upload area per console process)."""
    import atexit

    settings = con.settings
    area = form_uploads.UploadArea()
    atexit.register(area.close)
    app.state.form_uploads = area
    reading = threading.Lock()  # one form read at a time: the reading process takes a core
    router = APIRouter()
    fields_file = settings.fields_file

    def templates() -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for i, folder in enumerate(settings.forms_dirs):
            for p in sorted(Path(folder).glob("*.pdf")):
                out.append((p.stem, i))
        return out

    def template_path(form_id: str) -> Path | None:
        if not onboarding.TEMPLATE_ID.fullmatch(form_id):
            return None
        return next((Path(d) / f"{form_id}.pdf" for d in settings.forms_dirs if (Path(d) / f"{form_id}.pdf").is_file()),
                    None)

    def upload_page(request: Request, who: users.SignedIn, status: int = 200, error: str | None = None) -> Response:
        first = str(settings.forms_dirs[0]) if settings.forms_dirs else None
        return con.render("forms.html", request, who, status=status, error=error, templates=templates(),
                          first_folder=first, limit_mb=form_uploads.limit_mb(settings),
                          max_pages=form_uploads.MAX_FORM_PAGES)

    def gone(request: Request, who: users.SignedIn) -> Response:
        return con.render("message.html", request, who, status=404, title="Not found",
                          message="This upload is gone: its template was written, it was discarded, or it expired. "
                                  "Upload the form again.")

    def proposal_page(request: Request, who: users.SignedIn, up: form_uploads.Upload, answer: dict[str, Any], *,
                      status: int = 200, error: str | None = None, chosen: dict[int, str] | None = None,
                      form_id: str | None = None) -> Response:
        keys = onboarding.form_keys(con.vocab, fields_file)
        check = [k for k in keys if con.vocab.fields[k].type == "checkbox"]
        other = [k for k in keys if con.vocab.fields[k].type != "checkbox"]
        rows = []
        for n, r in enumerate(answer["rows"], start=1):
            selected = (chosen or {}).get(n, r["key"] if r["key"] else "-")
            x0, top, x1, bottom = r["rect"]
            rows.append({**r, "n": n, "selected": selected, "attention": r["status"] in ATTENTION,
                         "status_text": STATUS_TEXT.get(r["status"], r["status"]),
                         "options": [(k, con.vocab.label(k)) for k in (check if r["kind"] == "checkbox" else other)],
                         "x": x0, "y": top, "w": max(x1 - x0, 1.0), "h": max(bottom - top, 1.0), "clash": []})
        by_key: dict[str, list[int]] = {}
        for row in rows:
            if row["selected"] != "-":
                by_key.setdefault(row["selected"], []).append(row["n"])
        for row in rows:
            same = [n for n in by_key.get(row["selected"], []) if n != row["n"]]
            row["clash"] = same
            if same:
                row["attention"] = True
        pages = [{"n": i, "width": w, "height": h, "rows": [r for r in rows if r["page"] == i]}
                 for i, (w, h) in enumerate(answer["page_sizes"], start=1)]
        counts = answer["counts"]
        meta = up.meta
        return con.render("form_proposal.html", request, who, status=status, error=error, up=up, pages=pages,
                          rows=rows, counts=counts, kind=answer["source_kind"],
                          attention=sum(1 for r in rows if r["attention"]),
                          required_missing=[(k, con.vocab.label(k)) for k in answer["required_missing"]],
                          form_id=form_id or meta.get("form_id", answer["form"]), uploaded_by=meta.get("by", ""))

    # --- the upload ---------------------------------------------------------------------------------------

    @router.get("/admin/forms")
    def forms_home(request: Request) -> Response:
        who = signed_in(request, admin=True)
        area.sweep()
        with con.session(who) as s:
            audit.record(s, "read", "form_template", None, detail=f"{len(templates())} templates listed")
        return upload_page(request, who)

    @router.post("/admin/forms")
    async def forms_upload(request: Request) -> Response:
        who = signed_in(request, admin=True)
        limit = form_uploads.limit_bytes(settings)
        declared = request.headers.get("content-length", "")
        body = bytearray()
        over = declared.isdigit() and int(declared) > limit + 65536
        seen = 0
        async for chunk in request.stream():  # read to the end (a browser shows no answer to a cut-off upload)
            seen += len(chunk)
            if not over:
                body += chunk
                over = len(body) > limit + 65536  # the form's other fields and the multipart framing
            if over:
                body = bytearray()  # nothing of a refused upload is kept, not even in memory
                if seen > 10 * limit:
                    break  # not a form: stop listening
        fields, upload = ({}, None) if over else _multipart(request.headers.get("content-type", ""), bytes(body))
        if not over and not users.csrf_matches(who.csrf_token, fields.get("csrf")):
            return HTMLResponse("<h1>Not allowed</h1><p>The form was out of date or not sent from this console. "
                                "Go back, reload and try again.</p>", status_code=403)  # as the console's other forms
        if over:
            return upload_page(request, who, 413, "Not uploaded: " + form_uploads.too_large(
                int(declared) if declared.isdigit() else limit + 1, settings) + ".")
        if upload is None or not upload[1]:
            return upload_page(request, who, 400, "Not uploaded: choose the form's file (a PDF or a scan) first.")
        filename, data = upload
        wanted = fields.get("form_id", "").strip()
        if wanted and not onboarding.TEMPLATE_ID.fullmatch(wanted):
            return upload_page(request, who, 400, "Not uploaded: a template id is letters, digits, '_' or '-' "
                                                  "(at most 80), e.g. westlake_intake.")
        form_id = wanted or _default_id(filename)
        try:
            up = area.keep(data, settings, by=who.name, form_id=form_id)
        except UploadRefused as exc:
            return upload_page(request, who, 400 if "limit" not in str(exc) else 413, f"Not uploaded: {exc}.")
        try:
            answer = await run_in_threadpool(_read, up, form_id)
        except UploadRefused as exc:
            area.remove(up.upload_id)
            return upload_page(request, who, 422, f"The form could not be read: {exc}.")
        with con.session(who) as s:
            audit.record(s, "create", "form_upload", up.upload_id,
                         detail=f"{answer['source_kind']} form, {len(answer['rows'])} boxes proposed")
        return RedirectResponse(f"/admin/forms/{up.upload_id}", status_code=303)

    def _read(up: form_uploads.Upload, form_id: str) -> dict[str, Any]:
        with reading:
            return form_uploads.propose(up, settings, form_id)

    # --- the proposal -------------------------------------------------------------------------------------

    @router.get("/admin/forms/{upload_id}")
    def forms_proposal(request: Request, upload_id: str) -> Response:
        who = signed_in(request, admin=True)
        up = area.get(upload_id)
        answer = up.answer() if up else None
        if up is None or answer is None:
            return gone(request, who)
        with con.session(who) as s:
            audit.record(s, "read", "form_upload", up.upload_id, detail="proposal viewed")
        return proposal_page(request, who, up, answer)

    @router.get("/admin/forms/{upload_id}/pages/{page}")
    def forms_page_image(request: Request, upload_id: str, page: int) -> Response:
        who = signed_in(request, admin=True)
        up = area.get(upload_id)
        image = up.page_image(page) if up else None
        if up is None or image is None:
            return Response(status_code=404)
        with con.session(who) as s:
            audit.record(s, "read", "form_upload", up.upload_id, detail=f"page {page} image")
        return Response(image.read_bytes(), media_type="image/png")

    @router.post("/admin/forms/{upload_id}/accept")
    async def forms_accept(request: Request, upload_id: str) -> Response:
        who, form = await posted(request, admin=True)
        up = area.get(upload_id)
        answer = up.answer() if up else None
        if up is None or answer is None:
            return gone(request, who)
        form_id = form.get("form_id", "").strip()
        chosen: dict[int, str] = {}
        problems: list[str] = []
        keys = set(onboarding.form_keys(con.vocab, fields_file))
        choices: dict[str, str | None] = {}
        for n, r in enumerate(answer["rows"], start=1):
            value = form.get(f"key:{n}")
            if value is None:
                problems.append(f"box {n} has no decision")
                continue
            chosen[n] = value
            if value == "-":
                choices[r["id"]] = None
            elif value in keys and (con.vocab.fields[value].type == "checkbox") == (r["kind"] == "checkbox"):
                choices[r["id"]] = value
            else:
                problems.append(f"box {n}: {value!r} is not a key such a box can have")
        holders: dict[str, list[int]] = {}
        for n, value in chosen.items():
            if value != "-":
                holders.setdefault(value, []).append(n)
        for key, ns in holders.items():
            if len(ns) > 1:
                problems.append(f"boxes {', '.join(map(str, ns))} all have {key} ({con.vocab.label(key)}): "
                                "give it to one and choose another key or 'leave out' for the others")
        if not any(v is not None for v in choices.values()) and not problems:
            problems.append("no box has a key: choose a key for at least one box")
        if not onboarding.TEMPLATE_ID.fullmatch(form_id):
            problems.append("the template id is letters, digits, '_' or '-' (at most 80), e.g. westlake_intake")
        elif template_path(form_id) is not None:
            problems.append(f"a template named {form_id} is already in use; choose another id")
        if not settings.forms_dirs:
            problems.append("no forms folder is configured (forms_dirs)")
        if problems:
            return proposal_page(request, who, up, answer, status=400, chosen=chosen, form_id=form_id,
                                 error="Not written: " + "; ".join(problems) + ".")

        def write() -> dict[str, Any]:
            with reading:
                return form_uploads.accept(up, settings, form_id, choices)

        try:
            result = await run_in_threadpool(write)
        except UploadRefused as exc:
            return proposal_page(request, who, up, answer, status=422, chosen=chosen, form_id=form_id,
                                 error=f"Not written: {exc}.")
        written = [r for r in result["rows"] if r["status"] in ("proposed", "confirmed") and r["key"]]
        with con.session(who) as s:
            audit.record(s, "create", "form_template", form_id,
                         detail=f"from upload {up.upload_id}: {len(written)} boxes with keys")
        area.remove(up.upload_id)
        return RedirectResponse(f"/admin/templates/{form_id}?written=1", status_code=303)

    @router.post("/admin/forms/{upload_id}/discard")
    async def forms_discard(request: Request, upload_id: str) -> Response:
        who, _form = await posted(request, admin=True)
        up = area.get(upload_id)
        if up is not None:
            area.remove(up.upload_id)
            with con.session(who) as s:
                audit.record(s, "delete", "form_upload", up.upload_id, detail="discarded")
        return RedirectResponse("/admin/forms", status_code=303)

    # --- a template and its check sheet -------------------------------------------------------------------

    @router.get("/admin/templates/{form_id}")
    def template_page(request: Request, form_id: str) -> Response:
        who = signed_in(request, admin=True)
        path = template_path(form_id)
        if path is None:
            return con.render("message.html", request, who, status=404, title="Not found",
                              message="There is no form template with that id.")
        try:
            report = onboarding.check_template(path, con.vocab, fields_file, None)
        except FrontdeskError as exc:
            return con.render("message.html", request, who, status=409, title="Template not readable",
                              message=str(exc))
        with con.session(who) as s:
            audit.record(s, "read", "form_template", form_id, detail=f"{len(report.keys)} keys listed")
        return con.render("form_template.html", request, who, form_id=form_id, folder=str(path.parent),
                          written=request.query_params.get("written") == "1",
                          keys=[(k, con.vocab.label(k)) for k in report.keys],
                          missing=[(k, con.vocab.label(k)) for k in report.missing_required])

    @router.get("/admin/templates/{form_id}/check.pdf")
    def template_check(request: Request, form_id: str) -> Response:
        who = signed_in(request, admin=True)
        path = template_path(form_id)
        if path is None:
            return Response(status_code=404)
        sheet = area.root / f"check-{secrets.token_hex(8)}.pdf"
        try:
            onboarding.check_template(path, con.vocab, fields_file, sheet)
            data = sheet.read_bytes()
        except FrontdeskError:
            return Response(status_code=409)
        finally:
            sheet.unlink(missing_ok=True)
        with con.session(who) as s:
            audit.record(s, "read", "form_template", form_id, detail="check sheet viewed")
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{form_id}-check.pdf"'})

    app.include_router(router)

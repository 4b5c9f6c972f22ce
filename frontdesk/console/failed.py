"""The console's retry of a failed file (the list and the dismissal are in :mod:`frontdesk.console.app`).

Retrying calls :func:`frontdesk.actions.retry_failed`, the same function as ``frontdesk documents
retry``: the file goes back through reading and filing exactly once, under the signed-in person's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from frontdesk import actions, audit, crops

if TYPE_CHECKING:
    from frontdesk.console.app import Console
    from frontdesk.console.mail import PostedFn, SignedInFn


def router(con: Console, signed_in: SignedInFn, posted: PostedFn) -> APIRouter:
    r = APIRouter()

    @r.post("/failed/{doc_id}/retry")
    async def failed_retry(request: Request, doc_id: str) -> Response:
        who, _form = await posted(request)
        try:
            with audit.acting_as(who.name), con.review_lock:  # letters go through the pipeline one batch at a time
                outcome = actions.retry_failed(con.pipeline, doc_id)
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not retried", message=str(exc))
        crops.forget(doc_id)
        if outcome.status == "failed":
            return con.render("message.html", request, who, status=200, title="Still cannot be read",
                              message=f"The file was read again and still failed: {outcome.error}")
        if outcome.status == "needs_review":
            return RedirectResponse(f"/review/{doc_id}", status_code=303)
        return RedirectResponse(f"/failed?retried={doc_id}", status_code=303)

    return r

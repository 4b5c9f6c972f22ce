"""Card/form conflicts on the review page: the insurance card and the patient's record (read from the
intake form) disagree about a payer, member ID or subscriber; the person sees both values with both
pictures side by side and picks one (:func:`frontdesk.actions.resolve_conflict`, also ``frontdesk flags
conflict FLAG --keep card|record``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from frontdesk import actions, review_queue

if TYPE_CHECKING:
    from frontdesk.console.app import Console
    from frontdesk.console.mail import PostedFn, SignedInFn


def router(con: Console, signed_in: SignedInFn, posted: PostedFn) -> APIRouter:
    r = APIRouter()

    @r.post("/conflicts/{flag_id}")
    async def settle(request: Request, flag_id: int) -> Response:
        who, form = await posted(request)
        try:
            with con.session(who) as s:
                flag = actions.resolve_conflict(s, flag_id, form.get("keep", ""), con.vocab)
                doc_id = flag.document_id
                left = bool(actions.card_conflicts(s, doc_id, con.vocab)) if doc_id else False
                nxt = None if left else review_queue.next_document(s, after=doc_id)
        except actions.ActionError as exc:
            return con.render("message.html", request, who, status=409, title="Not changed", message=str(exc))
        if left or nxt is None:
            return RedirectResponse(f"/review/{doc_id}", status_code=303)
        return RedirectResponse(f"/review/{nxt}?saved={doc_id}", status_code=303)

    return r

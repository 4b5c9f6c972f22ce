"""Reviews held in a Prefect flow run (:mod:`flows.review`), answered from the console.

A document the intake handed to the ``review`` flow waits in a paused or suspended run. When a person
saves its review in the console, the decision is filed by the console through the one review path
(:func:`frontdesk.review_queue.decide`, audited under their name) and the waiting run is then resumed with
an answer that says so (:func:`flows.review.resume_from_console`): it finishes without filing anything a
second time, and no patient data is sent to Prefect.

Prefect is imported only when a Prefect API is configured (``prefect.api_url`` or ``PREFECT_API_URL``) or
a local server answers on ``prefect.local_server_port`` (one started by ``frontdesk serve``): the console
starts and works without any Prefect server.
"""

from __future__ import annotations

import logging

from flows.server import review_api
from frontdesk import audit
from frontdesk.db import Database
from frontdesk.settings import Settings

log = logging.getLogger("frontdesk.console")


def resume_held_review(db: Database, settings: Settings, document_id: str, person: str) -> str | None:
    """Resume the run holding ``document_id``, if any, saying ``person`` answered in the console; audit it.
    Never raises: the decision is filed already, and a run not reached now finds it filed when resumed."""
    url = review_api(settings)
    if url is None:
        return None
    try:
        from frontdesk.netpolicy import check_prefect_api

        check_prefect_api(url)
        from flows.review import resume_from_console

        run_id = resume_from_console(url, document_id, person)
    except Exception as exc:  # noqa: BLE001 - the review is saved; the run is told later or times out
        log.warning("held review run of %s not resumed (%s)", document_id, exc.__class__.__name__)
        return None
    if run_id is not None:
        with audit.acting_as(person), db.begin() as s:
            audit.record(s, "update", "document", document_id, detail="held review run resumed")
    return run_id

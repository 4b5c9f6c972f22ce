"""The ``mail-batch`` flow: Prefect orchestration over :mod:`frontdesk.letters.mail`, nothing more.

Scheduled by ``frontdesk serve`` (``prefect.mail_cron``, weekdays at 16:00 by default, see
``flows/deployments.py``). Tasks pass ids and counts only and keep no results (``persist_result=False``,
``NO_CACHE``): names and addresses stay in the records and in the filed batch, never in Prefect's
result storage or its UI. The markdown artifact shows counts and reason codes.

A retried task is safe: a run that stopped after claiming its pieces is finished by the next one, and a
piece is never claimed twice (see :mod:`frontdesk.letters.mail`).
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.errors import phi_free
from frontdesk.letters.mail import MailSummary


@task(name="mail-batch", cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=30)
@phi_free("mail-batch")
def build_batch_task(kind: str, dry_run: bool, config_file: str | None) -> MailSummary:
    """Render what is pending, check the windows, claim, compose and file: one batch."""
    from frontdesk.db import open_database
    from frontdesk.letters.mail import run_mail
    from frontdesk.settings import load_settings
    from frontdesk.storage import open_storage

    settings = load_settings(config_file)
    db = open_database(settings)
    try:
        return run_mail(db, open_storage(settings), settings, kind=kind, dry_run=dry_run)
    finally:
        db.dispose()


# Not wrapped in phi_free itself (its one task is): Prefect validates this flow's parameters from the
# function it is given, and a wrapper from another module cannot resolve the ``Literal`` annotation.
@flow(name="mail-batch", persist_result=False, log_prints=False)
def mail_batch_flow(kind: Literal["all", "letters", "statements"] = "all", dry_run: bool = False) -> dict[str, Any]:
    """Batch every pending letter and/or statement into one print-ready PDF; return ids and counts. The
    configuration is the worker's own (no flow parameter names one: see :mod:`flows.params`)."""
    summary = build_batch_task(kind, dry_run, None)
    create_markdown_artifact(summary.markdown(), key="mail-batch",
                             description="Mail batch: pieces, pages, sheets and held-back reasons (counts only)")
    data = summary.as_dict()
    return {k: data[k] for k in ("batch_id", "dry_run", "kind", "items", "pages", "sheets", "address_sheets",
                                 "blank_pages", "held_by_reason", "objects", "withdrawn")}


#: The name the issue gives the flow; deployments use :func:`mail_batch_flow`.
mail_batch = mail_batch_flow

__all__ = ["build_batch_task", "mail_batch", "mail_batch_flow"]

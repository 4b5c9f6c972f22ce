"""The ``clearinghouse-inbox`` flow: reads what the clearinghouse's client dropped in the inbox (271
eligibility answers, 999 acknowledgments, 277CA claim acknowledgments; document types ``x12_271``,
``x12_999``, ``x12_277``) every few minutes under ``frontdesk serve``. A thin adapter over
:func:`frontdesk.claims.store.read_inbox`; no parameters, so nothing can point it at another folder.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from frontdesk.settings import Settings, load_settings


def deployment_schedule(settings: Settings) -> Any:
    from prefect.schedules import Cron

    from frontdesk.checks.schedule import settings_zone, validate_cron

    return Cron(validate_cron(settings.claims.clearinghouse.inbox_cron), timezone=settings_zone(settings))


@flow(name="clearinghouse_inbox", persist_result=False, log_prints=False)
def clearinghouse_inbox_flow() -> dict[str, Any]:
    """Counts of files read per type, files set aside (with the clearinghouse's file names), letters and flags."""
    from flows.eligibility import read_inbox_task
    from frontdesk.checks.schedule import practice_zone, settings_zone, today_in

    settings = load_settings()
    return read_inbox_task(settings, today_in(practice_zone(settings_zone(settings))))

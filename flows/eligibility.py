"""The ``eligibility`` flow: Prefect orchestration over :mod:`frontdesk.claims.store`, nothing more.

On ``claims.eligibility.schedule`` (default 07:00 on weekdays) it reads whatever the clearinghouse put
in the inbox (271 answers, 999 acknowledgments), then writes the 270 for the visits
``claims.eligibility.days_ahead`` business days ahead (default two), so answers are on the worklist
before the evening's pre-visit check. Parameters are a date at most: no paths, no configuration.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from frontdesk.settings import Settings, load_settings


def deployment_schedule(settings: Settings) -> Any:
    from prefect.schedules import Cron

    from frontdesk.checks.schedule import settings_zone, validate_cron

    return Cron(validate_cron(settings.claims.eligibility.schedule), timezone=settings_zone(settings))


def visit_day(settings: Settings, today: date) -> date:
    """``days_ahead`` business days after today (weekends and the practice's holidays skipped)."""
    from frontdesk.checks.config import checks_for
    from frontdesk.checks.schedule import next_business_day

    holidays = checks_for(settings.checks.rules_file).config.holidays
    d = today
    for _ in range(settings.claims.eligibility.days_ahead):
        d = next_business_day(d, holidays)
    return d


@task(name="read-clearinghouse-inbox", cache_policy=NO_CACHE, persist_result=False, retries=2,
      retry_delay_seconds=[5, 30])
def read_inbox_task(settings: Settings, today: date) -> dict[str, Any]:
    from frontdesk.claims.store import read_inbox
    from frontdesk.db import open_database
    from frontdesk.storage import open_storage

    db = open_database(settings)
    try:
        return read_inbox(settings, db, open_storage(settings), today=today).as_json()
    finally:
        db.dispose()


@task(name="send-eligibility-requests", cache_policy=NO_CACHE, persist_result=False)
def send_task(settings: Settings, visit_date: date, today: date) -> dict[str, Any]:
    from frontdesk.claims.store import send_eligibility
    from frontdesk.db import open_database
    from frontdesk.storage import open_storage

    db = open_database(settings)
    try:
        run = send_eligibility(settings, visit_date, db, open_storage(settings), today=today)
        out = run.as_json()
        return {k: v for k, v in out.items() if k != "not_sent"} | {"not_sent": len(run.not_sent)}
    finally:
        db.dispose()


@flow(name="eligibility", persist_result=False, log_prints=False)
def eligibility_flow(visit_date: str | None = None) -> dict[str, Any]:
    """Responses in, then requests out; returns counts and opaque ids only."""
    from frontdesk.checks.schedule import parse_visit_date, practice_zone, settings_zone, today_in

    settings = load_settings()
    today = today_in(practice_zone(settings_zone(settings)))
    day = parse_visit_date(visit_date, today=today) if visit_date else visit_day(settings, today)
    inbox = read_inbox_task(settings, today)
    sent = send_task(settings, day, today)
    return {"date": day.isoformat(), "inbox": inbox, "requests": sent}

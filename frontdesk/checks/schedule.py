"""When the check runs and which day it checks.

The practice thinks in its own wall-clock time: "at five in the afternoon, check tomorrow's visits; on
Friday, check Monday's". Prefect schedules need an IANA zone name, and ``datetime.now()`` on a server set
to UTC is the wrong day for a clinic in the evening, so the zone is resolved once, here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from frontdesk.exceptions import ConfigError


def local_zone_name() -> str:
    """This machine's zone: ``TZ``, else the ``/etc/localtime`` link, else ``/etc/timezone``, else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz and not tz.startswith("/"):
        return tz
    try:
        target = Path("/etc/localtime").resolve()
        parts = target.parts
        if "zoneinfo" in parts:
            return "/".join(parts[parts.index("zoneinfo") + 1:])
    except OSError:
        pass
    try:
        name = Path("/etc/timezone").read_text(encoding="ascii").strip()
        if name:
            return name
    except OSError:
        pass
    return "UTC"


def zone_name(configured: str | None) -> str:
    name = configured or local_zone_name()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"checks.timezone: unknown time zone {name!r} (use an IANA name such as America/Chicago)") from None
    return name


def practice_zone(configured: str | None) -> tzinfo:
    return ZoneInfo(zone_name(configured))


def settings_zone(settings: Any) -> str:
    """The practice's zone: ``checks.timezone``, else the one its Prefect schedules use, else this machine's."""
    prefect = getattr(settings, "prefect", None)
    return zone_name(settings.checks.timezone or getattr(prefect, "timezone", None))


def is_business_day(d: date, holidays: Iterable[date] = ()) -> bool:
    return d.weekday() < 5 and d not in set(holidays)


def next_business_day(after: date, holidays: Iterable[date] = ()) -> date:
    """The first weekday after ``after`` that is not a holiday: Friday -> Monday."""
    closed = set(holidays)
    d = after + timedelta(days=1)
    while not is_business_day(d, closed):
        d += timedelta(days=1)
    return d


def today_in(tz: tzinfo) -> date:
    return datetime.now(tz).date()


def parse_visit_date(text: str, *, today: date | None = None, holidays: Iterable[date] = ()) -> date:
    """``--date`` accepts ISO dates and the words staff use: today, tomorrow, next (business day).
    ``today`` is the practice's today, which on a server in UTC is not the machine's after 6 pm."""
    word = text.strip().lower()
    today = today or date.today()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word in ("next", "next-business-day"):
        return next_business_day(today, holidays)
    try:
        return date.fromisoformat(word)
    except ValueError:
        pass
    try:
        return datetime.strptime(word, "%m/%d/%Y").date()
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD, MM/DD/YYYY, today, tomorrow or next)") from None


def validate_cron(expr: str) -> str:
    """Five fields, each parseable: a typo here means the worklist silently never runs."""
    from cronsim import CronSim, CronSimError  # ships with Prefect 3; imported late to keep the CLI fast

    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(f"checks.schedule: {expr!r} is not a cron expression (five fields: minute hour day month weekday)")
    try:
        CronSim(expr, datetime(2026, 1, 1))
    except CronSimError as exc:
        raise ConfigError(f"checks.schedule: {expr!r} is not a valid cron expression ({exc})") from None
    return expr

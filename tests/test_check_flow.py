"""The previsit_check flow under Prefect (table artifact, no patient data in it) and its schedule."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from frontdesk.checks.schedule import is_business_day, next_business_day, parse_visit_date
from frontdesk.exceptions import ConfigError
from frontdesk.settings import load_settings
from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate


def test_schedule_is_five_pm_on_weekdays_in_the_practice_zone() -> None:
    from flows.previsit import deployment_schedule

    settings = load_settings(checks={"timezone": None}, prefect={"timezone": "America/Denver"})
    sched = deployment_schedule(settings)
    assert (sched.cron, sched.timezone) == ("0 17 * * 1-5", "America/Denver")
    # Friday after five: the next run is Monday at five, and it checks Tuesday.
    tz = ZoneInfo("America/Denver")
    fri = datetime(2026, 3, 6, 17, 30, tzinfo=tz)
    runs = CronSim(sched.cron, fri)
    nxt = next(runs)
    assert (nxt.date(), nxt.hour) == (date(2026, 3, 9), 17)
    assert next_business_day(date(2026, 3, 6)) == date(2026, 3, 9)  # Friday's 17:00 run checks Monday
    own = load_settings(checks={"timezone": "America/New_York", "schedule": "30 16 * * 1-5"})
    assert (deployment_schedule(own).cron, deployment_schedule(own).timezone) == ("30 16 * * 1-5", "America/New_York")


@pytest.mark.parametrize("cron", ["0 17 * *", "0 25 * * 1-5", "every day"])
def test_bad_cron_is_a_config_error(cron: str) -> None:
    from flows.previsit import deployment_schedule

    with pytest.raises(ConfigError, match="checks.schedule"):
        deployment_schedule(load_settings(checks={"schedule": cron}))


def test_bad_timezone_is_a_config_error() -> None:
    from flows.previsit import deployment_schedule

    with pytest.raises(ConfigError, match="unknown time zone"):
        deployment_schedule(load_settings(checks={"timezone": "Mars/Olympus"}))


def test_business_days_skip_weekends_and_holidays() -> None:
    assert next_business_day(date(2026, 3, 3)) == date(2026, 3, 4)
    assert next_business_day(date(2026, 3, 7)) == date(2026, 3, 9)  # Saturday -> Monday
    assert next_business_day(date(2026, 12, 24), [date(2026, 12, 25)]) == date(2026, 12, 28)
    assert not is_business_day(date(2026, 3, 8)) and is_business_day(date(2026, 3, 9))
    assert parse_visit_date("2026-03-03") == parse_visit_date("03/03/2026") == date(2026, 3, 3)
    friday = date(2026, 3, 6)
    assert parse_visit_date("tomorrow", today=friday) == date(2026, 3, 7)
    assert parse_visit_date("next", today=friday) == date(2026, 3, 9)
    assert parse_visit_date("next", today=friday, holidays=[date(2026, 3, 9)]) == date(2026, 3, 10)
    assert parse_visit_date("Today", today=friday) == friday
    with pytest.raises(ValueError):
        parse_visit_date("soon")


@pytest.fixture(scope="module")
def prefect_harness() -> Any:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.mark.integration
def test_flow_publishes_the_worklist_and_queues_reminders_once(prefect_harness: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.previsit import previsit_check_flow
    from frontdesk.db import open_database

    for k, v in {"FRONTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'frontdesk.db'}",
                 "FRONTDESK_STORAGE__ROOT": str(tmp_path / "storage"),
                 "FRONTDESK_CHECKS__TIMEZONE": TIMEZONE, "FRONTDESK_CHECKS__OUTPUT_DIR": str(tmp_path / "out"),
                 "FRONTDESK_CHECKS__APPOINTMENTS_DIR": str(tmp_path / "drop")}.items():
        monkeypatch.setenv(k, v)
    sc = generate(40, seed=9, extra_days=2, cancelled=1, distractors=5)
    db = open_database(load_settings())
    sc.load_into_db(db)
    db.dispose()
    (tmp_path / "drop").mkdir()
    sc.write_fhir(tmp_path / "drop" / "tomorrow.json")

    # Replayed as of the Wednesday evening before: Thursday's batch still reaches a Tuesday visit.
    as_of = "2026-02-25T17:00:00"  # a date and time, nothing else (the practice's zone)
    first = previsit_check_flow(visit_date=VISIT_DATE.isoformat(), now=as_of)
    assert first["summary"]["appointments"] == 40 and first["run_id"] == 1
    assert first["summary"]["reminders_queued"] > 0
    assert {"html", "pdf", "csv", "json"} <= set(first["outputs"])
    second = previsit_check_flow(visit_date=VISIT_DATE.isoformat(), now=as_of)
    assert second["previous_run_id"] == 1 and second["summary"]["reminders_queued"] == 0
    from flows.params import ParameterRefused

    for not_a_time in ("config/frontdesk.yaml", "/etc/passwd", "tomorrow"):  # a time or nothing
        with pytest.raises(ParameterRefused, match="now: an ISO date and time"):
            previsit_check_flow.fn(visit_date=VISIT_DATE.isoformat(), now=not_a_time)

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["previsit-worklist"])))
    assert arts and arts[0].type == "table"
    table = arts[0].data if isinstance(arts[0].data, list) else json.loads(arts[0].data)  # type: ignore[arg-type]
    assert len(table) == 40 and {r["appointment"] for r in table} == set(sc.expected())
    text = json.dumps(table) + (arts[0].description or "")
    for c in sc.cases:
        assert c.last_name not in text and c.date_of_birth.isoformat() not in text

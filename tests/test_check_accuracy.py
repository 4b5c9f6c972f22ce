"""The acceptance measure: 200 generated appointments, each built to hit a known set of findings, checked
against generated records. Every appointment must get exactly its findings (no misses, no extras), from
both CSV shapes and from the FHIR bundle, with records in memory and in the records database alike.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from frontdesk.checks.config import load_checks
from frontdesk.checks.patients import InMemoryRecords
from frontdesk.checks.runner import check_appointments, run_check
from frontdesk.db import open_database
from frontdesk.settings import load_settings
from tests.conftest import ROOT
from tests.fixtures.appointments import TIMEZONE, Scenario, generate

N = 200
WRITERS = {
    "appointment_report": ("appointments.csv", Scenario.write_appointment_report),
    "ehr_export": ("ehr.csv", Scenario.write_ehr_export),
    "fhir": ("bundle.json", Scenario.write_fhir),
}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(N, seed=7)


@pytest.fixture(scope="module")
def exports(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("exports")
    return {shape: writer(scenario, d / name) for shape, (name, writer) in WRITERS.items()}


pytest_plugins = ["tests.conftest_s3"]  # db_url: SQLite, and PostgreSQL when FRONTDESK_TEST_POSTGRES_URL is set


def _settings(tmp: Path, db_url: str):  # type: ignore[no-untyped-def]
    return load_settings(database_url=db_url,
                         storage={"root": tmp / "storage", "spool": tmp / "spool"},
                         checks={"timezone": TIMEZONE, "output_dir": tmp / "out", "appointments_dir": tmp / "in"})


def _differences(expected: dict[str, set[str]], got: dict[str, set[str]], scenario: Scenario) -> list[str]:
    cases = {c.appointment_id: c for c in scenario.cases}
    out = []
    for key in sorted(set(expected) | set(got)):
        e, g = expected.get(key), got.get(key)
        if e != g:
            how = cases[key].defects if key in cases else "?"
            out.append(f"{key} {how}: missed {sorted((e or set()) - (g or set()))}, "
                       f"extra {sorted((g or set()) - (e or set()))}" + ("" if g is not None else " (not listed)")
                       + ("" if e is not None else " (should not be listed)"))
    return out


def test_the_generated_day_exercises_every_rule(scenario: Scenario) -> None:
    """A measure is only as good as its cases: every finding occurs, alone and in company, and so do
    ready patients, MRN matches, name matches and each kind of near miss."""
    expected = scenario.expected()
    assert len(expected) == N
    counts = Counter(c for codes in expected.values() for c in codes)
    checks = load_checks(ROOT / "config" / "checks.yaml")
    assert set(counts) == {r.code for r in checks.config.rules.values()}
    assert min(counts.values()) >= 5, counts
    assert sum(1 for codes in expected.values() if not codes) >= 25  # ready patients
    assert sum(1 for codes in expected.values() if len(codes) >= 3) >= 15
    kinds = Counter(k for c in scenario.cases if c.checked for k in c.defects)
    for kind in ("nickname", "dob_typo", "unmatched", "no_intake", "ambiguous", "clean"):
        assert kinds[kind] >= 2, kinds
    on_day = [c for c in scenario.cases if c.checked]
    assert sum(1 for c in on_day if c.mrn) >= 60 and sum(1 for c in on_day if not c.mrn) >= 60
    assert sum(1 for c in scenario.cases if c.status == "cancelled") >= 5
    assert sum(1 for c in scenario.cases if c.start.date() != scenario.visit_date) >= 10


@pytest.mark.parametrize("shape", list(WRITERS))
def test_exact_findings_with_records_in_memory(scenario: Scenario, exports: dict[str, Path], shape: str) -> None:
    from zoneinfo import ZoneInfo

    from frontdesk.checks.appointments import load_appointments

    checks = load_checks(ROOT / "config" / "checks.yaml")
    parsed = load_appointments(exports[shape], checks.config.appointments, ZoneInfo(TIMEZONE), today=scenario.today)
    todays = [a for a in parsed.appointments if a.start.date() == scenario.visit_date]
    rows = check_appointments(todays, InMemoryRecords(scenario.records), checks, today=scenario.today)
    got = {r.appointment.key: set(r.codes) for r in rows}
    assert _differences(scenario.expected(), got, scenario) == []
    # Each appointment matched the record it was built for, and nothing else.
    want = {c.appointment_id: c.record_id for c in scenario.cases if c.checked}
    assert {r.appointment.key: (r.record.patient_id if r.record else None) for r in rows} == want
    by = Counter(r.match.matched_by for r in rows)
    assert by["mrn"] >= 40 and by["name_dob"] >= 40


def test_exact_findings_through_the_records_database(scenario: Scenario, exports: dict[str, Path],
                                                     tmp_path: Path, db_url: str) -> None:
    """The same truth through run_check and the records database: every export shape, three runs."""
    settings = _settings(tmp_path, db_url)
    db = open_database(settings)
    try:
        scenario.load_into_db(db)
        for shape in WRITERS:
            report = run_check(settings, scenario.visit_date, appointments_file=exports[shape], db=db,
                               today=scenario.today, render=False)
            got = {r.appointment.key: set(r.codes) for r in report.rows}
            assert _differences(scenario.expected(), got, scenario) == [], shape
            s = report.summary()
            assert s["cancelled_skipped"] == 6 and s["other_dates"] == 12 and s["bad_rows_skipped"] == 0
            assert s["ready"] == sum(1 for codes in scenario.expected().values()
                                     if not codes or all(c in WARNINGS for c in codes))
    finally:
        db.dispose()


WARNINGS = {r.code for r in load_checks(ROOT / "config" / "checks.yaml").config.rules.values()
            if r.severity == "warning"}

"""Runs against the records database: reminders queued once per appointment and gap, what changed since
the previous run, MRNs learned, no patient data in snapshots or the audit trail; and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frontdesk.checks.runner import CheckReport, run_check
from frontdesk.db import open_database
from frontdesk.db.checks_models import PatientIdentifier, ReminderGap
from frontdesk.db.models import AuditEvent, CheckRun, ExtractedField, Letter, PatientField
from frontdesk.settings import load_settings
from tests.conftest import ROOT, run_cli
from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, Scenario, generate, plain_spelling
from tests.s3server import run_main

SAMPLES = ROOT / "tests" / "fixtures" / "samples"
REMIND = {"intake.missing", "intake.unsigned", "intake.expired", "hipaa.unsigned", "insurance.primary.incomplete",
          "insurance.primary.member_id_invalid", "insurance.primary.subscriber_dob_missing",
          "insurance.primary.relationship_inconsistent", "insurance.secondary.incomplete", "patient.dob_invalid",
          "patient.phone_invalid", "patient.email_invalid"}  # config/checks.yaml: remind: true


pytest_plugins = ["tests.conftest_s3"]  # db_url: SQLite, and PostgreSQL when FRONTDESK_TEST_POSTGRES_URL is set


def _env(tmp_path: Path, db_url: str) -> Any:
    settings = load_settings(database_url=db_url,
                             storage={"root": tmp_path / "storage", "spool": tmp_path / "spool"},
                             checks={"timezone": TIMEZONE, "output_dir": tmp_path / "out",
                                     "appointments_dir": tmp_path / "in"})
    db = open_database(settings)
    sc = generate(60, seed=5, extra_days=3, cancelled=2, distractors=10)
    sc.load_into_db(db)
    yield settings, db, sc, tmp_path
    db.dispose()


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Any:
    """The records database on SQLite, and on PostgreSQL when one is configured: for the tests whose
    answer depends on transactions and constraints (reminders once, changes between runs)."""
    yield from _env(tmp_path, db_url)


@pytest.fixture
def env_sqlite(tmp_path: Path) -> Any:
    yield from _env(tmp_path, f"sqlite:///{tmp_path / 'frontdesk.db'}")


def check(env: Any, path: Path) -> CheckReport:
    settings, db, sc, _ = env
    return run_check(settings, VISIT_DATE, appointments_file=path, db=db, today=sc.today, render=False)


def count(db: Any, model: Any, *where: Any) -> int:
    with db.begin() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def reminder_letters(db: Any) -> list[Letter]:
    with db.begin() as s:
        return list(s.scalars(select(Letter).where(Letter.kind == "appointment_reminder").order_by(Letter.created_at)))


def test_running_twice_queues_each_reminder_once(env: Any) -> None:
    settings, db, sc, tmp = env
    csv_path = sc.write_appointment_report(tmp / "a.csv")
    first = check(env, csv_path)
    letters = reminder_letters(db)
    assert first.reminders_queued == len(letters) > 10
    # One letter per appointment with gaps a patient can act on and an address to mail to.
    rows = {r.appointment.key: r for r in first.rows}
    for letter in letters:
        ctx = letter.context
        assert letter.status == "pending" and ctx is not None
        row = rows[ctx["reference"]]
        assert set(ctx["gaps"]) == {f.code for f in row.findings} & REMIND
        assert ctx["missing_items"] == [f.message for f in row.findings if f.code in REMIND]
        assert letter.patient_id == (row.record.patient_id if row.record else None)
        assert ctx["appointment"]["provider"] == row.appointment.provider
        assert ctx["appointment"]["date"] == "Tuesday, March 3, 2026"
        assert ctx["appointment"]["time"] == row.appointment.start.strftime("%I:%M %p").lstrip("0")
        assert len(ctx["patient"]["address_lines"]) == 2
    for row in first.rows:
        actionable = {f.code for f in row.findings} & REMIND
        if actionable and row.reminder_letter is None:
            assert row.reminder_note  # said why: no address on file
    assert count(db, ReminderGap) == sum(len(letter.context["gaps"]) for letter in letters)

    second = check(env, csv_path)
    assert second.reminders_queued == 0
    assert len(reminder_letters(db)) == len(letters)
    assert second.previous_run_id == first.run_id and second.summary()["new"] == 0
    assert second.summary()["resolved"] == 0

    # The FHIR bundle carries addresses for patients we have no record of: those reminders can go now,
    # once; nothing already queued is queued again.
    fhir = sc.write_fhir(tmp / "b.json")
    third = check(env, fhir)
    unmatched_with_address = [r for r in third.rows if r.record is None and r.appointment.address
                              and not r.match.ambiguous]
    assert third.reminders_queued == len(unmatched_with_address) > 0
    assert check(env, fhir).reminders_queued == 0
    assert count(db, Letter, Letter.kind == "appointment_reminder") == len(letters) + len(unmatched_with_address)


def test_reminder_context_renders_with_the_letter_template(env_sqlite: Any) -> None:
    env = env_sqlite
    """The context stored on each reminder is what templates/letters/appointment_reminder.docx needs."""
    from docx import Document as Docx

    from frontdesk.rendering import render_docx

    settings, db, sc, tmp = env
    template = settings.letters_dir / "appointment_reminder.docx"
    if not template.is_file():
        pytest.skip("the appointment reminder template is not in this checkout")
    check(env, sc.write_appointment_report(tmp / "a.csv"))
    letter = max(reminder_letters(db), key=lambda x: len(x.context["missing_items"]))
    out = render_docx(template, letter.context, tmp / "reminder.docx")
    text = "\n".join(p.text for p in Docx(str(out)).paragraphs)
    ctx = letter.context
    for needle in (ctx["appointment"]["date"], ctx["appointment"]["time"], ctx["appointment"]["provider"],
                   *ctx["missing_items"]):
        assert needle in text


def test_changes_since_the_previous_run(env: Any) -> None:
    settings, db, sc, tmp = env
    path = sc.write_ehr_export(tmp / "e.csv")
    first = check(env, path)
    fixed = next(r for r in first.rows if r.codes == ["hipaa.unsigned"] and r.reminder_letter)
    broken = next(r for r in first.rows if not r.findings and r.record is not None
                  and r.record.fields.get("patient.address.zip"))
    with db.begin() as s:  # the patient signs at the desk; another one's phone turns out to be wrong
        assert fixed.record is not None and fixed.record.intake is not None
        s.execute(ExtractedField.__table__.update()
                  .where(ExtractedField.document_id == fixed.record.intake.document_id,
                         ExtractedField.key == "consent.hipaa_acknowledgment").values(value=True))
        s.execute(PatientField.__table__.update()
                  .where(PatientField.patient_id == broken.record.patient_id,  # type: ignore[union-attr]
                         PatientField.key == "patient.phone").values(value="1234567890"))
    letters_before = len(reminder_letters(db))
    second = check(env, path)
    assert second.previous_run_id == first.run_id
    rows = {r.appointment.key: r for r in second.rows}
    assert [x.code for x in rows[fixed.appointment.key].resolved] == ["hipaa.unsigned"]
    assert rows[fixed.appointment.key].findings == []
    assert rows[broken.appointment.key].new == ["patient.phone_invalid"]
    s2 = second.summary()
    assert (s2["resolved"], s2["new"], s2["gone_since_previous"]) == (1, 1, 0)
    assert all(not r.new and not r.resolved for k, r in rows.items()
               if k not in (fixed.appointment.key, broken.appointment.key))
    # Only the new gap gets a letter, and it asks only for the new item.
    letters = reminder_letters(db)
    assert len(letters) == letters_before + 1
    assert letters[-1].context["gaps"] == ["patient.phone_invalid"]
    assert rows[broken.appointment.key].reminder_letter == letters[-1].id

    # An appointment that disappears from the export (cancelled) is counted as gone, not as resolved.
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    drop = next(i for i, line in enumerate(lines) if line.startswith(fixed.appointment.key + ","))
    smaller = tmp / "smaller.csv"
    smaller.write_text("".join(lines[:drop] + lines[drop + 1:]), encoding="utf-8")
    third = check(env, smaller)
    assert third.summary()["gone_since_previous"] == 1 and third.summary()["resolved"] == 0


def test_a_cancelled_visit_voids_its_pending_reminder(env: Any) -> None:
    settings, db, sc, tmp = env
    path = sc.write_appointment_report(tmp / "a.csv")
    first = check(env, path)
    row = next(r for r in first.rows if r.reminder_letter)
    text = path.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith(row.appointment.key + ","))
    cancelled = tmp / "cancelled.csv"
    cancelled.write_text(text.replace(line, line.rsplit(",", 1)[0] + ",Cancelled"), encoding="utf-8")
    second = check(env, cancelled)
    assert second.reminders_voided == 1 and second.summary()["gone_since_previous"] == 1
    with db.begin() as s:
        assert s.get(Letter, row.reminder_letter).status == "void"  # type: ignore[union-attr]
        others = s.scalars(select(Letter.status).where(Letter.kind == "appointment_reminder",
                                                       Letter.id != row.reminder_letter))
        assert set(others) == {"pending"}
    # Booked again under the same ID: reminded again, once.
    third = check(env, path)
    assert third.reminders_queued == 1 and check(env, path).reminders_queued == 0


def test_mrns_are_learned_and_then_used(env_sqlite: Any) -> None:
    env = env_sqlite
    settings, db, sc, tmp = env
    path = sc.write_appointment_report(tmp / "a.csv")
    first = check(env, path)
    learn = [r for r in first.rows if r.match.matched_by == "name_dob" and r.appointment.mrn]
    assert learn
    second = check(env, path)
    by_key = {r.appointment.key: r for r in second.rows}
    for r in learn:
        assert by_key[r.appointment.key].match.matched_by == "mrn"
        assert by_key[r.appointment.key].codes == r.codes
    assert count(db, PatientIdentifier) == sum(1 for rec in sc.records if rec.mrn) + len(learn)


def test_snapshots_and_audit_carry_no_patient_data(env_sqlite: Any) -> None:
    env = env_sqlite
    settings, db, sc, tmp = env
    report = run_check(settings, VISIT_DATE, appointments_file=sc.write_fhir(tmp / "b.json"), db=db,
                       today=sc.today, render=True, pdf=False)
    with db.begin() as s:
        run = s.get(CheckRun, report.run_id)
        assert run is not None and run.status == "done" and run.run_date == VISIT_DATE
        snapshot = json.dumps(run.findings)
        events = list(s.scalars(select(AuditEvent)))
    assert set(json.loads(snapshot)["appointments"]) == {r.appointment.key for r in report.rows}
    audit_text = " ".join(f"{e.object_id} {e.detail}" for e in events)
    secrets = set()
    for rec in sc.records:
        secrets |= {rec.last_name, f"{rec.first_name} {rec.last_name}", rec.date_of_birth.isoformat()}  # type: ignore[union-attr]
    for c in sc.cases:
        secrets |= {c.last_name, c.date_of_birth.isoformat()}
    leaked = sorted(x for x in secrets if len(x) > 3 and (x in snapshot or x in audit_text))
    assert leaked == []
    actions = {(e.action, e.object_type) for e in events}
    assert {("create", "check_run"), ("read", "patient"), ("create", "letter"), ("export", "worklist")} <= actions
    reads = {e.patient_id for e in events if e.action == "read"}
    assert reads == {r.record.patient_id for r in report.rows if r.record}


def test_records_in_memory_store_nothing(env_sqlite: Any) -> None:
    env = env_sqlite
    from frontdesk.checks.patients import InMemoryRecords

    settings, db, sc, tmp = env
    report = run_check(settings, VISIT_DATE, appointments_file=sc.write_fhir(tmp / "b.json"),
                       records=InMemoryRecords(sc.records), today=sc.today, render=False)
    assert report.run_id is None and report.reminders_queued == 0
    assert count(db, CheckRun) == 0 and count(db, Letter) == 0


def test_newest_export_in_the_drop_folder_is_used(env_sqlite: Any) -> None:
    env = env_sqlite
    import os

    settings, db, sc, tmp = env
    drop = settings.checks.appointments_dir
    drop.mkdir(parents=True)
    old = sc.write_ehr_export(drop / "old.csv")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    (drop / "~lock.csv").write_text("garbage")
    new = sc.write_fhir(drop / "today.json")
    report = run_check(settings, VISIT_DATE, db=db, today=sc.today, render=False)
    assert report.source == new and report.format == "fhir"


# ---- the CLI --------------------------------------------------------------------------------------

def cli_env(fd_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return dict(fd_env, FRONTDESK_CHECKS__TIMEZONE=TIMEZONE, FRONTDESK_CHECKS__OUTPUT_DIR=str(tmp_path / "out"),
                FRONTDESK_CHECKS__APPOINTMENTS_DIR=str(tmp_path / "drop"))


def test_cli_json_and_summary(tmp_path: Path, fd_env: dict[str, str]) -> None:
    """Once through the installed command; the other CLI tests run it in-process (same parser and handlers)."""
    env = cli_env(fd_env, tmp_path)
    proc = run_cli("check", "--date", "2026-03-03", "--appointments", str(SAMPLES / "ehr_export.csv"), "--json",
                   "--no-pdf", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["date"] == "2026-03-03" and out["format"] == "csv:ehr_export"
    assert len(out["appointments"]) == 8 and out["summary"]["cancelled_skipped"] == 1
    assert all(a["status"] == "missing" and "intake.missing" in [f["code"] for f in a["findings"]]
               for a in out["appointments"])  # an empty database knows nobody
    assert set(out["outputs"]) == {"html", "csv", "json"}
    assert all(Path(p).is_file() for p in out["outputs"].values())
    again = run_main("check", "--date", "03/03/2026", "--appointments", str(SAMPLES / "ehr_export.csv"), "--no-pdf",
                     env=env)
    assert again.returncode == 0
    assert "8 appointments, 0 ready, 8 missing paperwork" in again.stdout
    assert "Since the previous check (run 1): 0 resolved, 0 new" in again.stdout


def _bad_export(tmp_path: Path, kind: str) -> Path:
    good = (SAMPLES / "appointment_report.csv").read_text(encoding="utf-8")
    p = tmp_path / f"{kind}.csv"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "missing_column":
        p.write_text(good.replace(",DOB,", ",Birthday,", 1), encoding="utf-8")
    elif kind == "bad_date":
        lines = good.splitlines(keepends=True)
        lines[2] = lines[2].replace("03/03/2026", "03/33/2026", 1)
        p.write_text("".join(lines), encoding="utf-8")
    elif kind == "encoding":
        lines = plain_spelling(good).splitlines(keepends=True)  # all ASCII but the one name below
        lines[4] = lines[4].replace('"', '"Peña-', 1)  # a name with ñ, then saved as Windows-1252
        p.write_bytes("".join(lines).encode("cp1252"))
    return p


@pytest.mark.parametrize("kind,message", [
    ("empty", "the file is empty"),
    ("missing_column", "row 1 (header): missing column 'DOB'"),
    ("bad_date", "row 3, column 'Appt Date': not a date (expected MM/DD/YYYY)"),
    ("encoding", "row 5, column 'Patient Name': not utf-8 text"),
])
def test_cli_malformed_exports(tmp_path: Path, fd_env: dict[str, str], kind: str, message: str) -> None:
    env = cli_env(fd_env, tmp_path)
    bad = _bad_export(tmp_path, kind)
    proc = run_main("check", "--date", "2026-03-03", "--appointments", str(bad), "--no-pdf", env=env)
    assert proc.returncode == 2
    assert message in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    if kind in ("bad_date", "encoding"):
        skip = run_main("check", "--date", "2026-03-03", "--appointments", str(bad), "--no-pdf", "--json",
                        "--skip-bad-rows", env=env)
        assert skip.returncode == 0, skip.stderr
        out = json.loads(skip.stdout)
        assert len(out["bad_rows"]) == 1 and message in out["bad_rows"][0]
        bad_row = int(message.split(",")[0].split()[1])
        bad_key = bad.read_bytes().splitlines()[bad_row - 1].split(b",")[0].decode()
        keys = {a["appointment_id"] for a in out["appointments"]}
        assert bad_key not in keys and len(keys) == 7  # the 8 visits of the day less the bad row
        assert message in skip.stderr  # skipped rows are still reported


def test_cli_bad_date_argument(tmp_path: Path, fd_env: dict[str, str]) -> None:
    proc = run_main("check", "--date", "next tuesday", "--appointments", str(SAMPLES / "ehr_export.csv"),
                    env=cli_env(fd_env, tmp_path))
    assert proc.returncode == 2 and "--date" in proc.stderr


def test_scenario_sizes_are_what_the_tests_assume() -> None:
    sc: Scenario = generate(60, seed=5, extra_days=3, cancelled=2, distractors=10)
    assert len(sc.expected()) == 60

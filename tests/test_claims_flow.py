"""Eligibility and claims with the records database: 270 out of a day's appointments, a generated 271
back (the clearinghouse is the one part mocked: tests/claims_fixtures.answer_270), the answers on the
patient's record and the pre-visit worklist, the missing-insurance letter for inactive coverage; an
837P batch filed and in the outbox, 999 rejections as flags on the claim; the CLI examples."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.checks.runner import run_check
from frontdesk.claims.errors import ClaimRefused
from frontdesk.claims.store import send_claims, send_eligibility
from frontdesk.clearinghouse import read_999, read_responses
from frontdesk.db import open_database
from frontdesk.db.claims_models import ClaimRow, EligibilityResult, X12Batch
from frontdesk.db.models import AuditEvent, Letter, StoredObjectRow
from frontdesk.settings import load_settings
from frontdesk.storage import open_storage
from tests.claims_fixtures import answer_270, make_999, write_ledger
from tests.conftest import run_cli
from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate

pytest_plugins = ["tests.conftest_s3"]

BILLING = {"npi": "1234567893", "tax_id": "36-1234567", "street": "120 Main Street", "city": "Springfield",
           "state": "IL", "zip": "627014321", "phone": "(217) 555-0142"}


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Any:
    settings = load_settings(database_url=db_url, storage={"root": tmp_path / "storage", "spool": tmp_path / "spool"},
                             checks={"timezone": TIMEZONE, "output_dir": tmp_path / "out",
                                     "appointments_dir": tmp_path / "in"},
                             claims={"billing": BILLING, "output_dir": tmp_path / "claims",
                                     "clearinghouse": {"outbox": tmp_path / "outbox", "inbox": tmp_path / "inbox",
                                                       "submitter_id": "FD0042", "receiver_id": "CH7781"}})
    db = open_database(settings)
    sc = generate(40, seed=6)
    sc.load_into_db(db)
    export = sc.write_ehr_export(tmp_path / "appointments.csv")
    yield settings, db, open_storage(settings), sc, export, tmp_path
    db.dispose()


def test_270_then_271_reaches_the_worklist_and_queues_the_letter(env: Any) -> None:
    settings, db, storage, sc, export, tmp = env
    run = send_eligibility(settings, VISIT_DATE, db, storage, appointments_file=export, today=sc.today)
    assert run.requests > 5 and run.not_sent  # self-pay, no payer ID, no record: reported, not sent
    assert all(n.reason for n in run.not_sent)
    out = Path(run.outbox_file or "")
    assert out.parent == tmp / "outbox" and out.name == f"{run.batch_id}.270.x12"  # opaque name
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    with db.begin() as s:
        assert s.get(StoredObjectRow, run.storage_key).state == "stored"  # type: ignore[union-attr]
        assert s.scalar(select(AuditEvent).where(AuditEvent.object_id == run.batch_id)) is not None
    for rec in sc.records:  # no name or member ID in the file name, the key or the audit detail
        assert rec.last_name.upper() not in out.name and rec.last_name not in (run.storage_key or "")

    traces = re.findall(r"^TRN\*1\*(\w+)\*", text, flags=re.M)
    traces = list(dict.fromkeys(traces))
    outcomes = {t: ("inactive", "not_found", "active", "rejected")[i % 4] for i, t in enumerate(traces)}
    answer, truth = answer_270(text, seed=3, outcomes=outcomes)
    resp = tmp / "inbox" / "resp.271"
    resp.parent.mkdir(parents=True, exist_ok=True)
    resp.write_text(answer)
    res = read_responses(settings, resp, db, storage, today=sc.today)
    assert res.unmatched == 0 and len(res.results) == len(traces)
    assert res.summary()["inactive"] == sum(1 for o in outcomes.values() if o == "inactive")

    with db.begin() as s:
        rows = list(s.scalars(select(EligibilityResult)))
        assert {r.checked_on for r in rows} == {sc.today}
        inactive_patients = {r.patient_id for r in rows if r.status == "inactive"}
        letters = list(s.scalars(select(Letter).where(Letter.kind == "missing_insurance")))
    assert inactive_patients and {x.patient_id for x in letters} <= inactive_patients
    assert res.letters_queued == len(letters) > 0
    assert all(x.status == "pending" and x.context and x.context["missing_items"] for x in letters)
    # the stored context renders with the practice's missing-insurance template
    import zipfile

    from frontdesk.rendering import render_docx

    out = render_docx(settings.letters_dir / "missing_insurance.docx", letters[0].context, tmp / "letter.docx")
    with zipfile.ZipFile(out) as z:
        body = re.sub(r"<[^>]+>", "", z.read("word/document.xml").decode("utf-8"))
    assert letters[0].context["missing_items"][0] in body and letters[0].context["patient"]["full_name"] in body

    report = run_check(settings, VISIT_DATE, appointments_file=export, db=db, today=sc.today, render=False)
    by_patient = {r.record.patient_id: r for r in report.rows if r.record is not None}
    for r in rows:
        row = by_patient[r.patient_id]
        codes = row.codes
        if r.status == "inactive":
            assert "insurance.inactive" in codes and row.status == "missing"
        elif r.status == "not_found":
            assert "insurance.not_found" in codes
            assert "cannot find the subscriber" in next(f.message for f in row.findings
                                                        if f.code == "insurance.not_found")
        elif r.status == "active":
            f = next(f for f in row.findings if f.code == "insurance.copay")
            assert f"copay ${r.copay_cents / 100:.2f}" in f.message  # type: ignore[operator]
        else:
            assert "insurance.unverified" in codes

    # the patient's record shows the answer and the date it was checked
    from tests.s3server import run_main

    some = rows[0]
    shown = run_main("patients", "show", some.patient_id, "--json",
                     env=dict(os.environ, FRONTDESK_DATABASE_URL=settings.database_url))
    assert shown.returncode == 0, shown.stderr
    cov = json.loads(shown.stdout)["coverage"]
    assert cov["status"] == some.status and cov["checked_on"] == sc.today.isoformat()

    # reading the same answers again queues no second letter
    again = read_responses(settings, resp, db, storage, today=sc.today)
    assert again.letters_queued == 0 and again.already_read
    with db.begin() as s:
        assert len(list(s.scalars(select(EligibilityResult)))) == len(rows)


def _insured_ids(db: Any, sc: Any) -> list[str]:
    from frontdesk.claims.claim837 import prepare_claims
    from frontdesk.claims.ledger import ServiceLine, Visit
    from frontdesk.claims.payers import payers_for

    settings = load_settings(claims={"billing": BILLING})
    ok = []
    for r in sc.records:
        v = Visit("T", r.patient_id, [ServiceLine(2, date(2026, 12, 1), "99213", [], 1, 10, ["I10"])])  # type: ignore[arg-type]
        try:
            prepare_claims([v], {r.patient_id: r}, payers_for(settings.claims.payers_file), settings)
        except ClaimRefused:
            continue
        ok.append(r.patient_id)
    return ok


def test_claims_batch_is_filed_with_paper_forms_and_999_rejections_flag_the_claim(env: Any) -> None:
    settings, db, storage, sc, _, tmp = env
    ids = _insured_ids(db, sc)[:5]
    ledger = write_ledger(tmp / "visits.csv", ids, date(2026, 12, 1), seed=4, max_lines=8)
    run = send_claims(settings, ledger, db, storage)
    assert run.claims == 5 and Path(run.outbox_file or "").is_file()
    assert Path(run.forms_pdf or "").is_file() and Path(run.preview_pdf or "").is_file() and run.forms >= 5
    text = Path(run.outbox_file or "").read_text()
    with pytest.raises(ClaimRefused, match="already sent in an earlier batch"):
        send_claims(settings, ledger, db, storage)
    with db.begin() as s:
        claims = list(s.scalars(select(ClaimRow)))
    target = claims[2].id
    ack = tmp / "inbox" / "ack.999"
    ack.parent.mkdir(parents=True, exist_ok=True)
    ack.write_text(make_999(text, reject_segment_of_claim=target))
    res = read_999(settings, ack, db, storage)
    assert res["flagged"] == 1
    with db.begin() as s:
        flagged = {c.id: (c.status, c.flags) for c in s.scalars(select(ClaimRow))}
    assert flagged[target][0] == "rejected" and "CLM segment error" in flagged[target][1][0]  # type: ignore[index]
    assert all(st == "written" for cid, (st, _) in flagged.items() if cid != target)
    with db.begin() as s:  # the 999 rejected the batch as a whole (its AK9)
        assert s.scalars(select(X12Batch).where(X12Batch.kind == "837P")).one().status == "rejected"
    assert read_999(settings, ack, db, storage)["already_read"]  # the same file twice: flagged once
    with db.begin() as s:
        assert len(s.get(ClaimRow, target).flags) == 1  # type: ignore[union-attr, arg-type]


def test_a_refused_batch_writes_nothing(env: Any) -> None:
    settings, db, storage, sc, _, tmp = env
    ids = _insured_ids(db, sc)[:3]
    ledger = write_ledger(tmp / "bad.csv", ids, date(2026, 12, 1), seed=5, bad_icd="XYZ12")
    with pytest.raises(ClaimRefused, match="is not an ICD-10-CM code"):
        send_claims(settings, ledger, db, storage)
    assert not (tmp / "outbox").exists() or not list((tmp / "outbox").iterdir())
    with db.begin() as s:
        assert s.scalar(select(X12Batch)) is None and s.scalar(select(ClaimRow)) is None


def _examples(command: str) -> list[list[str]]:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    block = proc.stdout.split("examples:", 1)[1]
    return [line.split()[2:] for line in block.splitlines() if line.strip().startswith("frontdesk ")]


def test_help_examples_run(tmp_path: Path, fd_env: dict[str, str]) -> None:
    """Every example in ``--help`` runs as written, in a folder holding the files it names."""
    env = dict(fd_env, FRONTDESK_CHECKS__TIMEZONE=TIMEZONE,
               FRONTDESK_CLAIMS__OUTPUT_DIR=str(tmp_path / "claims"),
               FRONTDESK_CLAIMS__CLEARINGHOUSE__OUTBOX=str(tmp_path / "outbox"),
               FRONTDESK_CLAIMS__CLEARINGHOUSE__INBOX=str(tmp_path / "inbox"),
               **{f"FRONTDESK_CLAIMS__BILLING__{k.upper()}": v for k, v in BILLING.items()})
    db = open_database(load_settings(database_url=env["FRONTDESK_DATABASE_URL"]))
    sc = generate(30, seed=6)  # visits on 2026-03-03, the examples' date
    sc.load_into_db(db)
    sc.write_ehr_export(tmp_path / "appointments.csv")
    ids = _insured_ids(db, sc)[:3]
    write_ledger(tmp_path / "visits.csv", ids, VISIT_DATE, seed=2)
    db.dispose()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        ran = []
        # The request first: the response examples answer the batch it wrote.
        for args in sorted(_examples("eligibility"), key=lambda a: ("--date" not in a, "--inbox" in a)):
            outbox = sorted((tmp_path / "outbox").glob("*.270.x12"))
            if "--responses" in args:  # the answer to the request the first example wrote
                (tmp_path / "response.271").write_text(answer_270(outbox[-1].read_text(), seed=1)[0])
            if "--inbox" in args:
                (tmp_path / "inbox").mkdir(exist_ok=True)
                (tmp_path / "inbox" / "later.271").write_text(answer_270(outbox[-1].read_text(), seed=2)[0])
            proc = run_cli("eligibility", *args, env=env)
            assert proc.returncode == 0, (args, proc.stderr)
            ran.append(args)
        assert "x12_271 1" in proc.stdout and (tmp_path / "inbox" / "done" / "later.271").is_file()
        said = {}
        for args in _examples("claims"):
            if "--acknowledgment" in args:
                sent = sorted((tmp_path / "outbox").glob("*.837p.x12"))
                (tmp_path / "response.999").write_text(make_999(sent[-1].read_text()))
            proc = run_cli("claims", *args, env=env)
            assert proc.returncode == 0, (args, proc.stderr)
            ran.append(args)
            said[args[0]] = proc.stdout
        assert len(ran) == 7
        assert "3 claims accepted" in said["--acknowledgment"]
        assert said["--list"].count("accepted by the clearinghouse (999)") == 3
        assert (tmp_path / "alignment.pdf").is_file()
    finally:
        os.chdir(cwd)


def test_missing_billing_settings_exit_with_the_config_code(tmp_path: Path, fd_env: dict[str, str]) -> None:
    (tmp_path / "v.csv").write_text("Visit ID,Patient ID,Date of Service,CPT,Charge,Diagnoses\nV1,pat-1,2026-12-01,99213,80,I10\n")
    proc = run_cli("claims", "--ledger", str(tmp_path / "v.csv"), env=fd_env)
    assert proc.returncode == 3
    assert proc.stderr.strip().startswith("frontdesk: claims.billing: npi, tax_id") and "Traceback" not in proc.stderr


def test_inbox_reads_responses_and_sets_aside_what_it_cannot(env: Any) -> None:
    settings, db, storage, sc, export, tmp = env
    run = send_eligibility(settings, VISIT_DATE, db, storage, appointments_file=export, today=sc.today)
    inbox = tmp / "inbox"
    inbox.mkdir()
    (inbox / "a.271").write_text(answer_270(Path(run.outbox_file or "").read_text(), seed=4)[0])
    (inbox / "b.x12").write_text("ISA*00*broken")
    (inbox / "c.txt").write_text("not x12 at all")
    from frontdesk.clearinghouse import read_inbox

    res = read_inbox(settings, db, storage, today=sc.today)
    assert res.read == {"x12_271": 1}
    assert sorted(f.split(":")[0] for f in res.failed) == ["b.x12", "c.txt"]
    assert (inbox / "done" / "a.271").is_file()
    assert (inbox / "failed" / "b.x12.reason.txt").read_text().strip()
    assert not [p for p in inbox.iterdir() if p.is_file()]


def test_the_flow_asks_two_business_days_ahead(env: Any) -> None:
    from flows.deployments import SCHEDULED
    from flows.eligibility import visit_day

    settings = env[0]
    assert visit_day(settings, date(2026, 12, 3)) == date(2026, 12, 7)  # Thursday -> Monday
    assert visit_day(settings, date(2026, 12, 7)) == date(2026, 12, 9)
    assert {"flows.eligibility", "flows.clearinghouse"} <= {e.module for e in SCHEDULED}
    from flows.clearinghouse import deployment_schedule

    assert deployment_schedule(settings).cron == "*/10 * * * *"


@pytest.fixture
def prefect_harness() -> Any:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.mark.integration
def test_eligibility_flow_under_prefect_reads_the_inbox_then_sends(prefect_harness: Any, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow is a thin adapter: the same store functions, as tasks; its result is counts and ids only."""
    from flows.eligibility import eligibility_flow

    env = {"FRONTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'frontdesk.db'}",
           "FRONTDESK_STORAGE__ROOT": str(tmp_path / "storage"), "FRONTDESK_CHECKS__TIMEZONE": TIMEZONE,
           "FRONTDESK_CHECKS__APPOINTMENTS_DIR": str(tmp_path / "drop"),
           "FRONTDESK_CLAIMS__CLEARINGHOUSE__OUTBOX": str(tmp_path / "outbox"),
           "FRONTDESK_CLAIMS__CLEARINGHOUSE__INBOX": str(tmp_path / "inbox"),
           **{f"FRONTDESK_CLAIMS__BILLING__{k.upper()}": v for k, v in BILLING.items()}}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sc = generate(30, seed=6)
    db = open_database(load_settings())
    sc.load_into_db(db)
    db.dispose()
    (tmp_path / "drop").mkdir()
    sc.write_ehr_export(tmp_path / "drop" / "export.csv")
    first = eligibility_flow(visit_date=VISIT_DATE.isoformat())
    assert first["inbox"]["read"] == {} and first["requests"]["requests"] > 0
    sent = Path(first["requests"]["outbox_file"])
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "answer.271").write_text(answer_270(sent.read_text(), seed=7)[0])
    second = eligibility_flow(visit_date=VISIT_DATE.isoformat())
    assert second["inbox"]["read"] == {"x12_271": 1}
    text = json.dumps(second)
    assert not any(r.last_name in text for r in sc.records)  # no patient data in a flow result

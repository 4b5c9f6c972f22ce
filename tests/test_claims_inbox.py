"""A clearinghouse's answers as documents (issue 19, item 5): 271, 999 and 277CA files dropped in the
watched folder (or handed to ``frontdesk process``) are recognised as ``x12_271``, ``x12_999`` and
``x12_277``, filed like any document and applied once: coverage on the patient's record and the
worklist, the 837P batch accepted or its claims flagged, each claim accepted or rejected by the payer with
its STC codes in plain words. Malformed X12 goes to failed/ with one line naming it by id. The
clearinghouse is the part mocked (tests/claims_fixtures.py generates what it would send)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.checks.runner import run_check
from frontdesk.claims.responses import read_277ca
from frontdesk.claims.store import send_claims, send_eligibility
from frontdesk.claims.x12 import parse_interchange
from frontdesk.db.claims_models import ClaimRow, EligibilityResult, X12Batch
from frontdesk.db.models import Document, Letter
from tests.claims_fixtures import answer_270, make_277ca, make_999, write_ledger
from tests.conftest import run_cli
from tests.fixtures.appointments import TIMEZONE, VISIT_DATE, generate
from tests.test_claims_flow import BILLING, _insured_ids

pytest_plugins = ["tests.conftest_s3"]


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Any:
    """The practice of tests/test_claims_flow.py: billing set up, 40 generated patients, a day's export."""
    from frontdesk.db import open_database
    from frontdesk.settings import load_settings
    from frontdesk.storage import open_storage

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


def _claims(db: Any) -> dict[str, ClaimRow]:
    with db.begin() as s:
        rows = list(s.scalars(select(ClaimRow)))
        for r in rows:
            s.expunge(r)
    return {r.id: r for r in rows}


def _send_claims(env: Any, n: int = 5) -> tuple[str, list[str]]:
    settings, db, storage, sc, _, tmp = env
    ids = _insured_ids(db, sc)[:n]
    ledger = write_ledger(tmp / "visits.csv", ids, date(2026, 12, 1), seed=4, max_lines=3)
    run = send_claims(settings, ledger, db, storage, paper=False)
    return Path(run.outbox_file or "").read_text(), sorted(_claims(db))


# --- 277CA read on its own ------------------------------------------------------------------------------

def test_277ca_accepted_rejected_and_mixed_are_read_per_claim(env: Any) -> None:
    text, ids = _send_claims(env, 4)
    everyone = read_277ca(parse_interchange(make_277ca(text)))
    assert [a.claim_id for a in everyone] == ids and not any(a.rejected for a in everyone)
    assert all(a.payer_claim_number and a.reasons() == ["A2:20:PR accepted into the payer's system: accepted "
                                                        "for processing (payer)"] for a in everyone)

    mixed = read_277ca(parse_interchange(make_277ca(text, rejected={
        ids[1]: [("A7", "562", "85")], ids[3]: [("A6", "164", "IL"), ("A7", "158", "QC")]})))
    by_id = {a.claim_id: a for a in mixed}
    assert [c for c, a in by_id.items() if a.rejected] == [ids[1], ids[3]]
    assert by_id[ids[1]].reasons() == ["A7:562:85 rejected: information invalid: National Provider "
                                       "Identifier (NPI) (billing provider)"]
    assert by_id[ids[3]].reasons() == ["A6:164:IL rejected: information missing: member ID (subscriber)",
                                       "A7:158:QC rejected: information invalid: date of birth (patient)"]
    assert not by_id[ids[0]].rejected and by_id[ids[0]].amount is not None

    # a rejection at the billing provider's level covers every claim beneath it
    level = read_277ca(parse_interchange(make_277ca(text, provider_rejection=("A3", "496", "41"))))
    assert all(a.rejected and "submitter not approved for electronic claims" in a.reasons()[0] for a in level)


# --- through the watched folder -------------------------------------------------------------------------

def test_responses_dropped_in_the_watched_folder_are_filed_and_applied(env: Any) -> None:
    from frontdesk.watch import Watcher

    settings, db, storage, sc, export, tmp = env
    elig = send_eligibility(settings, VISIT_DATE, db, storage, appointments_file=export, today=sc.today)
    request = Path(elig.outbox_file or "").read_text()
    traces = list(dict.fromkeys(re.findall(r"^TRN\*1\*(\w+)\*", request, flags=re.M)))
    outcomes = {t: ("inactive", "active", "not_found")[i % 3] for i, t in enumerate(traces)}
    text_837, ids = _send_claims(env, 5)
    drop = tmp / "watched"
    drop.mkdir()
    (drop / "eligibility.271").write_text(answer_270(request, seed=3, outcomes=outcomes)[0])
    (drop / "ack.999").write_text(make_999(text_837))
    ack_277 = make_277ca(text_837, rejected={ids[2]: [("A7", "562", "85")]})
    (drop / "claims-ack.277").write_text(ack_277)
    broken = make_277ca(text_837).replace("SE*", "SE*9", 1)  # the segment count no longer adds up
    (drop / "cut.x12").write_text(broken)

    wsettings = settings.model_copy(deep=True)
    wsettings.watch.ledger, wsettings.watch.stable_seconds, wsettings.watch.workers = tmp / "ledger.db", 0.0, 1
    stats = Watcher(wsettings, drop).run(once=True, install_signals=False)
    assert stats.finished == {"filed": 3, "failed": 1}

    with db.begin() as s:
        docs = {d.document_type: d for d in s.scalars(select(Document).where(Document.document_type.like("x12_%")))}
        assert set(docs) == {"x12_271", "x12_999", "x12_277"}
        assert all(d.outcome == "filed" and d.patient_id is None for d in docs.values())
        batches = {b.kind: b for b in s.scalars(select(X12Batch).where(X12Batch.direction == "in"))}
        assert batches["277"].storage_key == f"{docs['x12_277'].storage_prefix}/original.277"
        out_837 = s.scalars(select(X12Batch).where(X12Batch.kind == "837P")).one()
        assert out_837.status == "accepted"  # the 999 accepted the batch
        results = list(s.scalars(select(EligibilityResult)))
        letters = list(s.scalars(select(Letter).where(Letter.kind == "missing_insurance")))
    from frontdesk.checks.schedule import practice_zone, settings_zone, today_in

    # checked on the practice's today (the watcher runs now, not on the scenario's day)
    assert len(results) == len(traces) and {r.checked_on for r in results} == {
        today_in(practice_zone(settings_zone(settings)))}
    assert letters and {x.patient_id for x in letters} <= {r.patient_id for r in results if r.status == "inactive"}

    # the claims: accepted by the clearinghouse, then accepted or rejected by the payer, in plain words
    claims = _claims(db)
    assert claims[ids[2]].status == "payer_rejected"
    assert claims[ids[2]].flags == ["277CA: rejected: A7:562:85 rejected: information invalid: National "
                                    "Provider Identifier (NPI) (billing provider)"]
    assert {c.status for i, c in claims.items() if i != ids[2]} == {"payer_accepted"}

    # the worklist shows the answers
    report = run_check(settings, VISIT_DATE, appointments_file=export, db=db, today=sc.today, render=False)
    by_patient = {r.record.patient_id: r for r in report.rows if r.record is not None}
    for r in results:
        codes = by_patient[r.patient_id].codes
        assert {"inactive": "insurance.inactive", "not_found": "insurance.not_found",
                "active": "insurance.copay"}[r.status] in codes

    # the malformed file: failed/<id>/ with one line of reason naming it by id, nothing applied from it
    (item,) = [p for p in (tmp / "failed").iterdir() if p.is_dir()]
    reason = (item / "reason.txt").read_text()
    assert "malformed X12: segment" in reason and "SE counts" in reason
    assert not any(rec.last_name in reason for rec in sc.records)
    with db.begin() as s:
        assert len(list(s.scalars(select(X12Batch).where(X12Batch.kind == "277")))) == 1

    # the same 277CA dropped again is a duplicate: no second batch, no flag twice
    (drop / "again.277").write_text(ack_277)
    wsettings.watch.ledger = tmp / "ledger2.db"
    again = Watcher(wsettings, drop).run(once=True, install_signals=False)
    assert again.finished == {"duplicate": 1}
    assert _claims(db)[ids[2]].flags == claims[ids[2]].flags


# --- through the CLI ------------------------------------------------------------------------------------

def test_process_and_extract_report_the_new_document_types(env: Any, tmp_path: Path) -> None:
    settings, db, storage, sc, _, tmp = env
    text_837, ids = _send_claims(env, 3)
    ack = tmp / "payer.277"
    ack.write_text(make_277ca(text_837, rejected={ids[0]: [("A6", "254", "")]}))
    cli_env = {"FRONTDESK_DATABASE_URL": settings.database_url,
               "FRONTDESK_STORAGE__ROOT": str(settings.storage.root),
               "FRONTDESK_STORAGE__SPOOL": str(settings.storage.spool), "PATH": "/usr/bin:/bin"}
    import os

    cli_env = dict(os.environ, **cli_env)
    ext = run_cli("extract", str(ack), "--json", env=cli_env)
    assert ext.returncode == 0, ext.stderr
    reading = json.loads(ext.stdout)
    assert reading["document_type"] == "x12_277" and reading["form"] == "005010X214"
    assert reading["x12"]["rejected"] == 1 and reading["x12"]["claims"][0]["codes"] == ["A6:254"]
    assert reading["x12"]["claims"][0]["reasons"] == ["A6:254 rejected: information missing: principal "
                                                      "diagnosis code"]

    proc = run_cli("process", str(ack), "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    (outcome,) = json.loads(proc.stdout) if proc.stdout.lstrip().startswith("[") else \
        [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert outcome["status"] == "filed" and outcome["document_type"] == "x12_277"
    assert [f["code"] for f in outcome["flags"]] == ["claims.rejected"]

    listing = run_cli("claims", "--list", env=cli_env)
    assert listing.returncode == 0, listing.stderr
    assert f"claim {ids[0]}: REJECTED by the payer (277CA)" in listing.stdout
    assert "A6:254 rejected: information missing: principal diagnosis code" in listing.stdout
    assert listing.stdout.count("accepted by the payer for processing (277CA)") == 2
    as_json = {c["claim_id"]: c for c in json.loads(run_cli("claims", "--list", "--json", env=cli_env).stdout)}
    assert as_json[ids[0]]["status"] == "payer_rejected"

    # X12 that is not a response (our own 837P) and a cut file: exit 2, one line naming the file
    cut = tmp / "cut.277"
    cut.write_text(ack.read_text()[:-40])
    for bad, why in ((Path(settings.claims.clearinghouse.outbox).glob("*.837p.x12").__next__(), "not a response"),
                     (cut, "malformed X12")):
        proc = run_cli("extract", str(bad), env=cli_env)
        assert proc.returncode == 2 and why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_clearinghouse_inbox_uses_the_same_pipeline(env: Any) -> None:
    """One path: a 277CA fetched into the clearinghouse inbox is filed as a document and applied; the
    same bytes dropped later in the watched folder are a duplicate of it."""
    from frontdesk.clearinghouse import read_inbox
    from frontdesk.pipeline import Pipeline

    settings, db, storage, sc, _, tmp = env
    text_837, ids = _send_claims(env, 3)
    inbox = tmp / "inbox"
    inbox.mkdir(exist_ok=True)
    ack = make_277ca(text_837, rejected={ids[1]: [("A7", "164", "IL")]})
    (inbox / "resp.277").write_text(ack)
    (inbox / "short.277").write_text(ack[: len(ack) // 2])
    res = read_inbox(settings, db, storage, today=sc.today)
    assert res.read == {"x12_277": 1} and res.claims_flagged == 1
    (failed,) = res.failed
    assert re.fullmatch(r"short\.277: doc-[0-9a-f]{16}: malformed X12: .+", failed)
    assert _claims(db)[ids[1]].status == "payer_rejected"
    with db.begin() as s:
        assert s.scalars(select(Document).where(Document.document_type == "x12_277")).one().outcome == "filed"
    again = tmp / "dropped.277"
    again.write_text(ack)
    work = Pipeline(settings, storage=storage, db=db).intake(again)
    assert work.status == "duplicate"


def test_x12sdk_cannot_read_a_271_with_a_subscriber_level_aaa(env: Any) -> None:
    """Why our own reader: x12sdk's 2100C AAA reuses the 2100B code list, so a 271 saying 'subscriber not
    found' (AAA*N**75*C) does not fit its model; our reader (above, and tests/test_claims_x12.py) reads it."""
    from x12sdk.io import X12ModelReader

    from frontdesk.claims.eligibility import CoverageStatus, read_271

    settings, db, storage, sc, export, tmp = env
    elig = send_eligibility(settings, VISIT_DATE, db, storage, appointments_file=export, today=sc.today)
    request = Path(elig.outbox_file or "").read_text()
    traces = list(dict.fromkeys(re.findall(r"^TRN\*1\*(\w+)\*", request, flags=re.M)))
    answer, _ = answer_270(request, seed=2, outcomes={t: "not_found" for t in traces})
    assert {r.status for r in read_271(answer)} == {CoverageStatus.not_found}
    active, _ = answer_270(request, seed=2, outcomes={t: "active" for t in traces})
    with X12ModelReader(active) as rd:  # the same answers without the AAA: x12sdk reads them
        assert len([m for model in rd.models() for m in model.members()]) == len(traces)
    with pytest.raises(Exception), X12ModelReader(answer) as rd:  # noqa: B017 (its validation error)
        list(rd.models())

"""X12 eligibility (270/271) and claims (837P): the writer against independent parsers (x12sdk for
270/271, pyx12's 005010X222A1 map for every 837P), refusals that name the claim and field, and the
CMS-1500 paper form's boxes."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
from x12sdk.io import X12ModelReader

from frontdesk.billable import check_state, check_zip
from frontdesk.checks.patients import PatientRecord, record_from_fields
from frontdesk.claims import cms1500
from frontdesk.claims.claim837 import (
    build_837p,
    prepare_claims,
    require_billing,
    validate_837p,
    write_checked_837p,
)
from frontdesk.claims.eligibility import CoverageStatus, EligibilityRequest, build_270, read_271, request_for
from frontdesk.claims.errors import BillingConfigError, ClaimRefused
from frontdesk.claims.ledger import ServiceLine, Visit, read_claim_ledger
from frontdesk.claims.payers import payers_for
from frontdesk.claims.x12 import X12Error, clean, parse_interchange
from frontdesk.exceptions import ExitCode
from frontdesk.settings import Settings, load_settings
from tests.claims_fixtures import ICD10, answer_270, write_ledger
from tests.fixtures.appointments import VISIT_DATE, generate

BILLING = {"npi": "1234567893", "tax_id": "36-1234567", "street": "120 Main Street", "city": "Springfield",
           "state": "IL", "zip": "62701-4321", "phone": "(217) 555-0142", "contact_name": "Billing Office"}
WHEN = datetime(2026, 12, 5, 10, 30)


def billing_settings(**billing: Any) -> Settings:
    return load_settings(claims={"billing": {**BILLING, **billing},
                                 "clearinghouse": {"submitter_id": "FD0042", "receiver_id": "CH7781"}})


def insured_records(n: int, seed: int) -> list[PatientRecord]:
    """Records from the appointments generator that carry usable insurance (the claim tests' patients)."""
    sc = generate(max(40, n * 3), seed=seed)
    payers = payers_for(load_settings().claims.payers_file)
    out = []
    for r in sc.records:
        req = request_for(r, "x", VISIT_DATE, payers)
        if isinstance(req, EligibilityRequest) and r.date_of_birth is not None:
            payer = payers.find(r.value("insurance.primary.payer_name"))
            if payer is not None and payer.member_id_ok(req.member_id) and r.text("patient.address.street") \
                    and r.text("patient.address.city") and check_zip(r.value("patient.address.zip")) is None \
                    and check_state(r.value("patient.address.state")) is None:
                out.append(r)
    return out[:n]


# --- the X12 layer ----------------------------------------------------------------------------------

def test_values_cannot_break_a_segment() -> None:
    assert clean("O'Brien~Jr*3:^x\n") == "O'BRIEN JR 3 X"
    assert clean("a" * 80, max_len=60) == "A" * 60


def test_a_cut_or_edited_file_is_refused_naming_it() -> None:
    s = billing_settings()
    recs = insured_records(3, seed=4)
    payers = payers_for(s.claims.payers_file)
    text = build_270([request_for(r, "k", VISIT_DATE, payers) for r in recs], s, control_number=3,  # type: ignore[misc]
                     when=WHEN)
    with pytest.raises(X12Error, match="elig-17: no IEA"):
        parse_interchange(text[: len(text) // 2], "elig-17")
    lines = text.splitlines()
    del lines[8]  # one segment lost: SE's count no longer adds up
    with pytest.raises(X12Error, match="SE counts"):
        parse_interchange("\n".join(lines), "elig-17")


# --- 270 / 271 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [3, 11])
def test_270_round_trip_through_x12sdk_keeps_every_field(seed: int) -> None:
    s = billing_settings()
    sc = generate(40, seed=seed)
    payers = payers_for(s.claims.payers_file)
    made = [request_for(r, f"appt-{i}", VISIT_DATE, payers) for i, r in enumerate(sc.records)]
    reqs = [r for r in made if isinstance(r, EligibilityRequest)]
    assert reqs and len(reqs) < len(made)  # some patients are not sent (self-pay, no payer ID...)
    assert any(r.dependent for r in reqs)
    text = build_270(reqs, s, control_number=12, when=WHEN)
    with X12ModelReader(text) as rd:
        models = list(rd.models())
    assert len(models) == 1
    members = list(models[0].members())
    assert len(members) == len(reqs)
    by_id = {r.member_id: r for r in reqs}
    for m in members:
        r = by_id[m.member_id]
        assert m.payer_name == clean(r.payer_name)
        assert m.provider_name == "RIVERSIDE FAMILY MEDICINE"
        assert m.subscriber_name == (clean(r.subscriber_last), clean(r.subscriber_first) or None)
        assert m.is_dependent == r.dependent
        if r.dependent:
            assert m.name == (clean(r.patient_last), clean(r.patient_first))
        assert m.service_type_codes == ("30",)
        dmg = m.member.dmg_segment
        dob = r.patient_dob if r.dependent else r.subscriber_dob
        assert dmg is not None and dmg.date_time_period == dob
        dtp = m.member.dtp_segment[0] if isinstance(m.member.dtp_segment, list) else m.member.dtp_segment
        assert str(dtp.date_time_period).replace("-", "")[:8] in (VISIT_DATE.strftime("%Y%m%d"), str(VISIT_DATE))
    traces = {block.trn_segment[0].reference_identification_1 if isinstance(block.trn_segment, list)
              else block.trn_segment.reference_identification_1
              for a in models[0].loop_2000a for b in a.loop_2000b for block in b.loop_2000c}
    assert traces == {r.trace for r in reqs}
    # and our own reader reads what x12sdk read: the NPI and payer IDs
    ix = parse_interchange(text, "270")
    ids = {seg[9] for seg in ix.groups[0].transactions[0].body if seg.id == "NM1" and seg[1] == "PR"}
    assert ids == {r.payer_id for r in reqs}


def test_271_statuses_copay_deductible_and_reasons_read_back() -> None:
    s = billing_settings()
    recs = insured_records(12, seed=8)
    payers = payers_for(s.claims.payers_file)
    reqs = [request_for(r, "k", VISIT_DATE, payers) for r in recs]
    text = build_270(reqs, s, control_number=5, when=WHEN)  # type: ignore[arg-type]
    rnd = random.Random(2)
    outcomes = {r.trace: rnd.choice(["active", "inactive", "not_found", "rejected"]) for r in reqs}  # type: ignore[union-attr]
    answer, truth = answer_270(text, seed=5, outcomes=outcomes)
    results = read_271(answer, "resp-1")
    assert {r.trace for r in results} == set(truth)
    assert {o for o in outcomes.values()} == {"active", "inactive", "not_found", "rejected"}
    for r in results:
        t = truth[r.trace]  # type: ignore[index]
        assert r.status == CoverageStatus(t["status"])
        if t["status"] == "active":
            assert r.copay == Decimal(t["copay"]) and r.deductible_remaining == Decimal(t["deductible"])  # type: ignore[arg-type]
            assert r.plan_name == t["plan"] and not r.reasons
        elif t["status"] == "inactive":
            assert r.plan_name == t["plan"] and r.copay is None
        elif t["status"] == "not_found":
            assert r.reasons == ["the payer cannot find the subscriber"] and r.reason_codes == ["75"]
        else:
            assert r.reasons == ["the payer cannot answer right now; try again later"]


def test_271_active_and_inactive_round_trip_through_x12sdk() -> None:
    """x12sdk reads our 270 and the generated 271s alike. (It cannot read 2100C AAA rejections: its 2100C
    AAA reuses the 2100B code list, so 75 'subscriber not found' fails its model; our reader handles those.)"""
    s = billing_settings()
    recs = insured_records(10, seed=9)
    payers = payers_for(s.claims.payers_file)
    reqs = [request_for(r, "k", VISIT_DATE, payers) for r in recs]
    text = build_270(reqs, s, control_number=6, when=WHEN)  # type: ignore[arg-type]
    outcomes = {r.trace: ("active" if i % 3 else "inactive") for i, r in enumerate(reqs)}  # type: ignore[union-attr]
    answer, truth = answer_270(text, seed=1, outcomes=outcomes)
    with X12ModelReader(answer) as rd:
        members = [m for model in rd.models() for m in model.members()]
    ours = {r.member_id: r for r in read_271(answer)}
    assert len(members) == len(ours) == len(reqs)
    for m in members:
        mine = ours[m.member_id]
        eb = [b.eb_segment for b in m.benefits]
        assert (eb[0].eligibility_benefit_information == "1") == (mine.status == CoverageStatus.active)
        assert eb[0].plan_coverage_description == mine.plan_name
        copays = [e.benefit_amount for e in eb if e.eligibility_benefit_information == "B"]
        assert (Decimal(str(copays[0])) if copays else None) == mine.copay


# --- 837P -------------------------------------------------------------------------------------------

def _claims_for(s: Settings, tmp_path: Path, n: int, seed: int, **kw: Any) -> tuple[list[Any], dict[str, PatientRecord]]:
    recs = insured_records(n, seed=seed)
    ledger = write_ledger(tmp_path / f"visits-{seed}.csv", [r.patient_id for r in recs], date(2026, 12, 1),
                          seed=seed, **kw)
    return read_claim_ledger(ledger), {r.patient_id: r for r in recs}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_generated_837p_batch_validates_with_pyx12(tmp_path: Path, seed: int) -> None:
    s = billing_settings()
    visits, records = _claims_for(s, tmp_path, 8, seed, max_lines=8)
    claims = prepare_claims(visits, records, payers_for(s.claims.payers_file), s)
    assert len(claims) == 8
    assert any(not c.patient_is_subscriber for c in claims) or seed > 3
    text = write_checked_837p(claims, s, control_number=seed, when=WHEN)
    assert validate_837p(text) == []
    ix = parse_interchange(text, "837")
    body = ix.groups[0].transactions[0].body
    clm = [x for x in body if x.id == "CLM"]
    assert [x[1] for x in clm] == [c.claim_id for c in claims]
    assert [Decimal(x[2]) for x in clm] == [c.visit.total for c in claims]
    assert sum(1 for x in body if x.id == "SV1") == sum(len(v.lines) for v in visits)


def test_pyx12_errors_name_the_claim_and_the_field(tmp_path: Path) -> None:
    s = billing_settings()
    visits, records = _claims_for(s, tmp_path, 3, 7)
    claims = prepare_claims(visits, records, payers_for(s.claims.payers_file), s)
    text = build_837p(claims, s, control_number=9, when=WHEN)
    second = claims[1].claim_id
    lines = text.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith(f"CLM*{second}*"))
    sv = next(n for n in range(i, len(lines)) if lines[n].startswith("SV1*"))
    lines[sv] = lines[sv].replace("*UN*", "*XX*")
    errors = validate_837p("\n".join(lines) + "\n")
    assert f"claim {second}: SV103 (Unit or Basis for Measurement Code): invalid code value" in errors
    assert not any(claims[0].claim_id in e for e in errors)


def test_missing_npi_is_a_config_error_naming_it() -> None:
    s = billing_settings(npi="")
    with pytest.raises(BillingConfigError, match=r"claims.billing: npi not set") as exc:
        require_billing(s)
    assert exc.value.exit_code == ExitCode.config
    with pytest.raises(BillingConfigError, match="not a valid NPI"):
        require_billing(billing_settings(npi="1234567890"))
    with pytest.raises(BillingConfigError, match="ZIP\\+4"):
        require_billing(billing_settings(zip="62701"))


def test_invalid_icd10_and_member_id_are_refused_naming_claim_and_field(tmp_path: Path) -> None:
    s = billing_settings()
    recs = insured_records(3, seed=12)
    ledger = write_ledger(tmp_path / "v.csv", [r.patient_id for r in recs], date(2026, 12, 1), seed=3,
                          bad_icd="E11")  # a category, not a billable code
    visits = read_claim_ledger(ledger)
    bad_member = recs[2]
    fields = dict(bad_member.fields, **{"insurance.primary.member_id": "12"})
    records = {r.patient_id: r for r in recs}
    records[bad_member.patient_id] = record_from_fields(bad_member.patient_id, fields)
    with pytest.raises(ClaimRefused) as exc:
        prepare_claims(visits, records, payers_for(s.claims.payers_file), s)
    problems = exc.value.problems
    first, third = visits[0].claim_id, visits[2].claim_id
    row = visits[0].lines[0].row
    assert f"claim {first}: ledger row {row}: diagnosis code 1 (HI) is a category, not a billable code " \
           "(add the missing characters)" in problems
    assert not any("E11" in p for p in problems)  # the code is health information: named by place
    assert any(p.startswith(f"claim {third}: member ID (2010BA NM109) does not match") for p in problems)
    assert not any(visits[1].claim_id in p for p in problems)
    assert exc.value.exit_code == ExitCode.bad_input
    visits[1].place_of_service = "1:1"
    with pytest.raises(ClaimRefused, match=f"claim {visits[1].claim_id}: place of service \\(CLM05-1\\) is not"):
        prepare_claims(visits[1:2], records, payers_for(s.claims.payers_file), s)
    visits[0].lines[0].diagnoses = ["ZZZ99"]
    with pytest.raises(ClaimRefused, match=f"claim {first}: ledger row {row}: diagnosis code 1 \\(HI\\) is not an ICD-10-CM code"):
        prepare_claims(visits[:1], records, payers_for(s.claims.payers_file), s)


def test_the_generator_uses_real_billable_codes() -> None:
    from frontdesk.claims.claim837 import icd10_problem

    assert all(icd10_problem(c.replace(".", "")) is None for c in ICD10)


# --- CMS-1500 ---------------------------------------------------------------------------------------

def _line(n: int, dx: list[str]) -> ServiceLine:
    return ServiceLine(n, date(2026, 12, 1), "99213", ["25"] if n == 1 else [], Decimal(1), Decimal("85.50") + n, dx)


def test_continuation_forms_hold_six_lines_and_twelve_diagnoses() -> None:
    codes = [c.replace(".", "") for c in ICD10]
    lines = [_line(n, codes[(n * 3) % 20:(n * 3) % 20 + 3]) for n in range(1, 15)]
    forms = cms1500.split_forms(lines)
    assert sum(len(f[0]) for f in forms) == 14
    for ls, dx in forms:
        assert len(ls) <= 6 and len(dx) <= 12
        assert all(d in dx for line in ls for d in line.diagnoses)
    assert len(forms) >= 3
    # five lines with three new codes each: twelve codes fill a form after four lines
    fresh = [_line(n, codes[(n - 1) * 3:(n - 1) * 3 + 3]) for n in range(1, 6)]
    split = cms1500.split_forms(fresh)
    assert [len(ls) for ls, _ in split] == [4, 1] and [len(dx) for _, dx in split] == [12, 3]


def test_cms1500_data_lands_inside_its_boxes(tmp_path: Path) -> None:
    s = billing_settings()
    recs = insured_records(2, seed=21)
    dependent = next((r for r in insured_records(20, seed=21)
                      if r.text("insurance.primary.relationship_to_patient").lower() not in ("", "self")), recs[1])
    codes = [c.replace(".", "") for c in ICD10[:9]]
    visit = Visit("V12010001", dependent.patient_id, [_line(n, codes[n - 1:n + 1]) for n in range(1, 9)])
    claims = prepare_claims([visit], {dependent.patient_id: dependent}, payers_for(s.claims.payers_file), s)
    data = cms1500.render_pdf(claims, s)
    preview = cms1500.render_pdf(claims, s, preview=True)
    expected = cms1500.form_values(claims[0], s)
    assert len(expected) == 2  # 8 lines: a continuation form
    assert expected[0]["28_total"] == "CONTINUED" and expected[1]["28_total"] == f"{visit.total:.2f}".replace(".", " ")
    (tmp_path / "data.pdf").write_bytes(data)
    (tmp_path / "preview.pdf").write_bytes(preview)
    checked = 0
    with pdfplumber.open(tmp_path / "data.pdf") as pd, pdfplumber.open(tmp_path / "preview.pdf") as pv:
        assert len(pd.pages) == len(pv.pages) == 2
        assert not pd.pages[0].rects and not pd.pages[0].lines  # data only: nothing of the form is printed
        for page_no, values in enumerate(expected):
            rects = {(round(r["x0"], 1), round(r["top"], 1), round(r["x1"], 1), round(r["bottom"], 1))
                     for r in pv.pages[page_no].rects}
            words = pd.pages[page_no].extract_words(keep_blank_chars=True, x_tolerance=1.5)
            for key, text in values.items():
                box = cms1500.BOXES[key]
                x0, top, x1, bottom = box.rect()
                assert (round(x0, 1), round(top, 1), round(x1, 1), round(bottom, 1)) in rects, key  # drawn on the preview
                hits = [w for w in words if w["text"].strip() == text[: box.width].strip()
                        and x0 <= w["x0"] and w["x1"] <= x1 and top <= w["top"] and w["bottom"] <= bottom]
                assert hits, f"{key} ({text!r}) is not inside its box on form {page_no + 1}"
                checked += 1
    assert checked > 80


def test_printer_offsets_move_the_data_and_alignment_page_renders(tmp_path: Path) -> None:
    s = load_settings(claims={"billing": BILLING, "printers": {"front": {"x": 3.6, "y": -2.0}}})
    recs = insured_records(1, seed=2)
    visit = Visit("V1", recs[0].patient_id, [_line(1, ["I10"])])
    claims = prepare_claims([visit], {recs[0].patient_id: recs[0]}, payers_for(s.claims.payers_file), s)
    (tmp_path / "a.pdf").write_bytes(cms1500.render_pdf(claims, s))
    (tmp_path / "b.pdf").write_bytes(cms1500.render_pdf(claims, s, printer="front"))
    with pdfplumber.open(tmp_path / "a.pdf") as a, pdfplumber.open(tmp_path / "b.pdf") as b:
        wa = {w["text"]: w for w in a.pages[0].extract_words()}
        wb = {w["text"]: w for w in b.pages[0].extract_words()}
    assert wb["99213"]["x0"] - wa["99213"]["x0"] == pytest.approx(3.6, abs=0.01)
    assert wb["99213"]["top"] - wa["99213"]["top"] == pytest.approx(2.0, abs=0.01)
    long_visit = Visit("V" + "7" * 20, recs[0].patient_id, [_line(1, ["I10"])])
    long_claims = prepare_claims([long_visit], {recs[0].patient_id: recs[0]}, payers_for(s.claims.payers_file), s)
    with pytest.raises(ClaimRefused, match="box 26. PATIENT'S ACCOUNT NO. holds 14 characters"):
        cms1500.render_pdf(long_claims, s)
    with pytest.raises(BillingConfigError, match="no printer named 'back'"):
        cms1500.render_pdf(claims, s, printer="back")
    (tmp_path / "align.pdf").write_bytes(cms1500.alignment_page(s, printer="front"))
    with pdfplumber.open(tmp_path / "align.pdf") as al:
        assert "ALIGNMENT TEST" in al.pages[0].extract_text() and al.pages[0].lines


@pytest.mark.parametrize(("holder_is", "pat01", "box6"), [("parent", "19", "CHILD"), ("spouse", "01", "SPOUSE"),
                                                         ("child", "G8", "OTHER")])
def test_the_patients_relationship_to_the_policy_holder_is_sent_not_the_reverse(holder_is: str, pat01: str,
                                                                              box6: str) -> None:
    """The intake form asks for the holder's relationship to the patient; a claim states the patient's
    relationship to the holder. A parent's policy makes the patient the child (PAT01 19)."""
    s = billing_settings()
    base = insured_records(1, seed=30)[0]
    fields = dict(base.fields, **{"insurance.primary.relationship_to_patient": holder_is,
                                  "insurance.primary.subscriber_name": "Robin Q Holder",
                                  "insurance.primary.subscriber_date_of_birth": "1950-05-05"})
    rec = record_from_fields(base.patient_id, fields)
    claims = prepare_claims([Visit("V9", rec.patient_id, [_line(1, ["I10"])])], {rec.patient_id: rec},
                            payers_for(s.claims.payers_file), s)
    text = write_checked_837p(claims, s, control_number=30, when=WHEN)
    assert f"PAT*{pat01}~" in text and "NM1*IL*1*HOLDER*ROBIN Q****MI*" in text
    assert cms1500.form_values(claims[0], s)[0]["6_relationship"] == box6

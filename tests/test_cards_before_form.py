"""The card comes first: scanned at check-in, before the patient's intake form is filed. Nobody fits it
then (``card.unmatched``, for a person); when the form comes, the card waiting for that patient is filed
into the new record as if it had come after the form: its member ID fills the gap, the missing-insurance
flag never stays open and no letter asks the patient for what the front desk already has. A card (or a
letter) about someone else keeps waiting."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from tests.fixtures import cards as card_gen
from tests.test_cards_process import P, cli_json, holder_of, intake_case


def flag_rows(db_url: str, document_id: str) -> list[tuple[str, str]]:
    """(code, status) of a document's flags in the records."""
    from sqlalchemy import select

    from frontdesk.db import open_database
    from frontdesk.db.models import FlagRow

    db = open_database(db_url)
    try:
        with db.begin() as s:
            return [(f.code, f.status) for f in s.scalars(select(FlagRow).where(FlagRow.document_id == document_id)
                                                          .order_by(FlagRow.id))]
    finally:
        db.dispose()


@pytest.mark.integration
def test_a_card_scanned_before_the_form_fills_the_form_and_no_letter_goes_out(tmp_path: Path,
                                                                              fd_env: dict[str, str]) -> None:
    case = intake_case(tmp_path / "forms", "member_id_blank")
    card = card_gen.card_for(holder_of(case), str(case.truth[P + "payer_name"]), tmp_path / "cards" / "card-0001",
                             seed=random.Random(5).randint(0, 999))

    # Check-in: the card is scanned, and no record fits it yet.
    card_out, = cli_json("process", str(card.path), env=fd_env)
    assert (card_out["document_type"], card_out["status"]) == ("insurance_card", "needs_review"), card_out["flags"]
    assert [f["code"] for f in card_out["flags"] if f["severity"] == "error"] == ["card.unmatched"]

    # The form comes later, its member ID blank: the waiting card gives it.
    form_out, = cli_json("process", str(case.path), env=fd_env)
    assert form_out["document_type"] == "intake_form"
    assert "insurance.missing_info" not in {f["code"] for f in form_out["flags"]}
    assert form_out["status"] == "filed", form_out["flags"]
    assert form_out["letters"] == []  # no letter asks for the member ID

    t = case.truth
    found = cli_json("patients", "find", str(t["patient.last_name"]), "--dob", str(t["patient.date_of_birth"]),
                     env=fd_env)
    assert len(found) == 1
    shown = cli_json("patients", "show", found[0]["id"], env=fd_env)
    assert shown["fields"][P + "member_id"] == {"value": card.truth[P + "member_id"],
                                                "source_document": card_out["record_id"]}
    assert shown["fields"][P + "payer_name"]["source_document"] == form_out["record_id"]  # the form's stays
    open_codes = {(f["code"], f["field"]) for f in shown["open_flags"]}
    assert ("insurance.missing_info", None) not in open_codes and ("missing", P + "member_id") not in open_codes
    docs = {d["id"]: d for d in shown["documents"]}
    assert set(docs) == {form_out["record_id"], card_out["record_id"]}
    assert docs[card_out["record_id"]]["outcome"] == "filed"  # no longer waiting for a person
    # No missing-insurance letter; the new patient's welcome letter (config/letters.yaml) is queued.
    assert [lt["kind"] for lt in shown["letters"]] == ["welcome"]
    mail = cli_json("mail", "--kind", "letters", "--dry-run", env=fd_env)
    assert (mail["items"], mail["held"]) == (1, [])  # the welcome letter only

    assert ("card.unmatched", "resolved") in flag_rows(fd_env["FRONTDESK_DATABASE_URL"], card_out["record_id"])
    audit = cli_json("audit", "--patient", found[0]["id"], env=fd_env)
    resolved = [e for e in audit if e["object_type"] == "flag" and "card.unmatched" in (e.get("detail") or "")]
    assert len(resolved) == 1 and form_out["record_id"] in resolved[0]["detail"]


@pytest.mark.integration
def test_cards_of_someone_else_keep_waiting_and_a_letter_about_the_patient_is_filed(tmp_path: Path,
                                                                                    settings) -> None:  # type: ignore[no-untyped-def]
    from faker import Faker
    from sqlalchemy import select

    from frontdesk import records
    from frontdesk.db.models import Document, FlagRow, Letter
    from frontdesk.intake import process_batch
    from frontdesk.letters.mail import pending_pieces
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import letters as letter_gen

    case = intake_case(tmp_path / "forms", "member_id_blank")
    t = case.truth
    first, last = str(t["patient.first_name"]), str(t["patient.last_name"])
    dob = date.fromisoformat(str(t["patient.date_of_birth"]))
    payer = str(t[P + "payer_name"])
    # Same name, another birthday (a namesake), and a stranger: neither is this patient.
    namesake = card_gen.card_for(card_gen.Holder(first, last, date(dob.year - 31, 1 + dob.month % 12, 9)), payer,
                                 tmp_path / "cards" / "card-0001", seed=21)
    stranger = card_gen.card_for(card_gen.Holder("Quentin", "Abernathy", date(1950, 3, 3)), payer,
                                 tmp_path / "cards" / "card-0002", seed=22)
    r = random.Random(4)
    fake = Faker("en_US")
    fake.seed_instance(4)
    (tmp_path / "letters").mkdir()
    referral = letter_gen.make_letter(r, fake, "referral", (first, last, dob), date(2026, 11, 15), None)
    letter_gen.draw_letter(referral, r, tmp_path / "letters" / "referral.pdf")

    pipeline = Pipeline(settings)
    namesake_out, stranger_out, letter_out, form_out = process_batch(
        [namesake.path, stranger.path, tmp_path / "letters" / "referral.pdf", case.path], pipeline)
    assert (namesake_out.document_type, stranger_out.document_type) == ("insurance_card", "insurance_card")
    assert letter_out.document_type == "correspondence"

    # The cards stay where they were: unmatched, for a person; the form still lacks its member ID.
    assert form_out.status == "needs_review"
    assert "insurance.missing_info" in {f.code for f in form_out.flags}
    with pipeline.db.begin() as s:
        for out in (namesake_out, stranger_out):
            doc = s.get(Document, out.record_id)
            assert (doc.patient_id, doc.outcome) == (None, "needs_review")
            assert s.scalars(select(FlagRow.status).where(FlagRow.document_id == out.record_id,
                                                          FlagRow.code == "card.unmatched")).one() == "open"
        patient_id = s.get(Document, form_out.record_id).patient_id
        view = records.show_patient(s, patient_id)
        assert view is not None
        assert view.fields[P + "member_id"]["value"] in (None, "")
        assert ("insurance.missing_info", None) in {(f.code, f.field) for f in view.open_flags}
        # The referral that came before the form is the patient's now.
        assert {d.id for d in view.documents} == {form_out.record_id, letter_out.record_id}
        assert s.get(Document, letter_out.record_id).outcome == "filed"
        assert s.scalars(select(FlagRow.status).where(FlagRow.document_id == letter_out.record_id,
                                                      FlagRow.code == "correspondence.unmatched")).one() == "resolved"
        # The letter asking for the member ID is written and waits for the mail run.
        assert [(lt.kind, lt.status) for lt in s.scalars(select(Letter))] == [("missing_insurance", "pending")]
        assert len(pending_pieces(s, settings, "letters")) == 1

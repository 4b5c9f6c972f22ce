"""Cards and letters through ``frontdesk process``: a card fills the gap its patient's intake form left,
clears the missing-insurance flag, and withdraws the missing-insurance letter that has not gone out; a
card that disagrees with the form is flagged for a person and changes nothing; a letter is attached to its
patient or flagged."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.fixtures import cards as card_gen
from tests.fixtures import generator as gen

P = "insurance.primary."
CARD_PAYERS = {p.canonical for p in card_gen.PAYERS}


def intake_case(folder: Path, scenario: str, *, start: int = 0) -> gen.Case:
    """A digital intake form whose patient is their own policy holder with a payer cards are made for
    (so the card's name and birthday are the patient's). ``start``: the first seed tried (another
    patient: one past the seed of the first, ``int(case.path.parent.name) + 1``)."""
    for seed in range(start, start + 60):
        case = gen.generate(folder / str(seed), 1, seed=seed, kinds=("digital",), scenarios=(scenario,),
                            today=date(2026, 11, 1))[0]
        if case.truth[P + "relationship_to_patient"] == "self" and case.truth[P + "payer_name"] in CARD_PAYERS:
            (folder / str(seed) / "truth.json").unlink()
            return case
    raise AssertionError("no suitable intake case in 60 seeds")


def holder_of(case: gen.Case, member_id: str | None = None) -> card_gen.Holder:
    t = case.truth
    group = t[P + "group_number"]
    return card_gen.Holder(str(t["patient.first_name"]), str(t["patient.last_name"]),
                           date.fromisoformat(str(t["patient.date_of_birth"])), member_id=member_id,
                           group=group if isinstance(group, str) else None)


def cli_json(*args: str, env: dict[str, str]) -> Any:
    proc = run_cli(*args, "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.integration
def test_a_card_filed_through_frontdesk_process_clears_the_missing_member_id(tmp_path: Path,
                                                                              fd_env: dict[str, str]) -> None:
    case = intake_case(tmp_path / "forms", "member_id_blank")
    card = card_gen.card_for(holder_of(case), str(case.truth[P + "payer_name"]), tmp_path / "cards" / "card-0001",
                             seed=random.Random(5).randint(0, 999))

    form_out, = cli_json("process", str(case.path), env=fd_env)
    assert form_out["document_type"] == "intake_form" and form_out["status"] == "needs_review"
    assert ("insurance.missing_info", None) in {(f["code"], f["field"]) for f in form_out["flags"]}
    assert len(form_out["letters"]) == 1  # the missing-insurance letter is filed, waiting for the mail run

    card_out, = cli_json("process", str(card.path), env=fd_env)
    assert card_out["document_type"] == "insurance_card", card_out["flags"]
    assert card_out["status"] == "filed", card_out["flags"]
    assert not [f for f in card_out["flags"] if f["severity"] == "error"]

    t = case.truth
    found = cli_json("patients", "find", str(t["patient.last_name"]), "--dob", str(t["patient.date_of_birth"]),
                     env=fd_env)
    assert len(found) == 1
    shown = cli_json("patients", "show", found[0]["id"], env=fd_env)
    member = shown["fields"][P + "member_id"]
    assert member == {"value": card.truth[P + "member_id"], "source_document": card_out["record_id"]}
    assert shown["fields"][P + "payer_name"]["source_document"] == form_out["record_id"]  # the form's stays
    open_codes = {(f["code"], f["field"]) for f in shown["open_flags"]}
    assert ("insurance.missing_info", None) not in open_codes
    assert ("missing", P + "member_id") not in open_codes
    assert {d["id"] for d in shown["documents"]} == {form_out["record_id"], card_out["record_id"]}
    # The letter asking for the member ID had not been mailed: it is withdrawn, and no mail run sends it.
    letter, = shown["letters"]
    assert (letter["kind"], letter["status"]) == ("missing_insurance", "void")
    mail = cli_json("mail", "--kind", "letters", "--dry-run", env=fd_env)
    assert (mail["items"], mail["held"]) == (0, [])
    audit = cli_json("audit", "--patient", found[0]["id"], env=fd_env)
    assert any(e["object_id"] == letter["id"] and "void" in (e.get("detail") or "") for e in audit)


@pytest.mark.integration
def test_a_card_that_disagrees_with_the_form_is_flagged_and_changes_nothing(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from frontdesk import records
    from frontdesk.db.models import FlagRow, Letter, Patient
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline

    case = intake_case(tmp_path / "forms", "complete")
    on_form = str(case.truth[P + "member_id"])
    payer = next(p for p in card_gen.PAYERS if p.canonical == case.truth[P + "payer_name"])
    r = random.Random(11)
    other = next(m for m in (payer.member_id(r) for _ in range(20)) if m != on_form)
    card = card_gen.card_for(holder_of(case, member_id=other), payer.canonical, tmp_path / "cards" / "card-0001",
                             seed=9)

    pipeline = Pipeline(settings)
    # Form and card in one run: the card is read after the form it is compared with.
    form_out, card_out = process_batch([case.path, card.path], pipeline)
    assert form_out.document_type == "intake_form" and form_out.status == "filed", form_out.flags
    assert card_out.document_type == "insurance_card"
    assert card_out.status == "needs_review"
    conflicts = [f for f in card_out.flags if f.code == "card.conflict"]
    assert [f.field for f in conflicts] == [P + "member_id"], card_out.flags
    assert all(on_form not in f.message and other not in f.message for f in conflicts)  # no IDs in messages
    with pipeline.db.begin() as s:
        patient = s.scalars(select(Patient)).one()
        view = records.show_patient(s, patient.id)
        assert view is not None
        assert view.fields[P + "member_id"] == {"value": on_form, "source_document": form_out.record_id}
        assert {(f.code, f.field, f.document_id) for f in view.open_flags} >= {
            ("card.conflict", P + "member_id", card_out.record_id)}
        assert s.scalars(select(FlagRow).where(FlagRow.document_id == card_out.record_id,
                                               FlagRow.code == "card.conflict")).one().patient_id == patient.id
        assert not list(s.scalars(select(Letter).where(Letter.kind != "welcome")))  # welcome: a new patient
    # The same reading handed in again (a review) is not flagged twice.
    with pipeline.db.begin() as s:
        reading = records.extraction_result(s, card_out.record_id)
        assert reading is not None
        records.record_new_reading(s, card_out.record_id, reading, outcome="filed",
                                   vocab=pipeline.reader.vocabulary)
    with pipeline.db.begin() as s:
        open_conflicts = list(s.scalars(select(FlagRow).where(FlagRow.document_id == card_out.record_id,
                                                              FlagRow.code == "card.conflict",
                                                              FlagRow.status == "open")))
        assert len(open_conflicts) == 1


@pytest.mark.integration
def test_form_and_card_in_one_run_write_no_letter_that_would_be_mailed(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from frontdesk.db.models import Letter
    from frontdesk.intake import process_batch
    from frontdesk.letters.mail import pending_pieces
    from frontdesk.pipeline import Pipeline

    case = intake_case(tmp_path / "forms", "member_id_blank")
    card = card_gen.card_for(holder_of(case), str(case.truth[P + "payer_name"]), tmp_path / "cards" / "card-0001",
                             seed=random.Random(5).randint(0, 999))
    pipeline = Pipeline(settings)
    form_out, card_out = process_batch([case.path, card.path], pipeline)
    assert card_out.status == "filed", card_out.flags
    with pipeline.db.begin() as s:
        letters = list(s.scalars(select(Letter)))
        assert [(lt.kind, lt.status) for lt in letters] == [("missing_insurance", "void")]
        assert not pending_pieces(s, settings, "letters")


@pytest.mark.integration
def test_a_typed_letter_is_filed_to_its_patient_and_a_strangers_letter_is_left_for_a_person(
        tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from faker import Faker

    from frontdesk import records
    from frontdesk.db.models import Document
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import letters as letter_gen

    case = intake_case(tmp_path / "forms", "complete")
    t = case.truth
    r = random.Random(4)
    fake = Faker("en_US")
    fake.seed_instance(4)
    out = tmp_path / "letters"
    out.mkdir()
    ours = letter_gen.make_letter(r, fake, "referral", (str(t["patient.first_name"]), str(t["patient.last_name"]),
                                                        date.fromisoformat(str(t["patient.date_of_birth"]))),
                                  date(2026, 11, 15), None)
    letter_gen.draw_letter(ours, r, out / "referral.pdf")
    theirs = letter_gen.make_letter(r, fake, "records_request", ("Quentin", "Abernathy", date(1950, 3, 3)),
                                    date(2026, 11, 15), None)
    letter_gen.draw_letter(theirs, r, out / "request.pdf")

    pipeline = Pipeline(settings)
    form_out, ours_out, theirs_out = process_batch([case.path, out / "referral.pdf", out / "request.pdf"], pipeline)
    assert (ours_out.document_type, ours_out.status) == ("correspondence", "filed"), ours_out.flags
    assert (theirs_out.document_type, theirs_out.status) == ("correspondence", "needs_review")
    unmatched = [f for f in theirs_out.flags if f.code == "correspondence.unmatched"]
    assert len(unmatched) == 1 and unmatched[0].severity == "error"
    assert "Quentin" not in unmatched[0].message and "Abernathy" not in unmatched[0].message
    with pipeline.db.begin() as s:
        patient_id = s.get(Document, form_out.record_id).patient_id
        view = records.show_patient(s, patient_id)
        assert view is not None
        assert {d.id for d in view.documents} == {form_out.record_id, ours_out.record_id}
        assert s.get(Document, theirs_out.record_id).patient_id is None

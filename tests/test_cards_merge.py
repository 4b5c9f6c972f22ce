"""A card and a form together: whose card it is, what it fills in, what it may never overwrite, and the
missing-insurance flag that clears when the card supplies the member ID."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from frontdesk.cards import (
    CONFLICT_CODE,
    Candidate,
    file_card,
    match_card,
    match_patient,
    merge_card,
    name_fits,
    same_value,
)
from frontdesk.field_flags import rule_flags
from frontdesk.fields import load_vocabulary
from frontdesk.models import ExtractionResult, FieldResult, Flag

ROOT = Path(__file__).resolve().parents[1]
VOCAB = load_vocabulary(ROOT / "config" / "fields.yaml")
P = "insurance.primary."
CARD_DOC = "doc-00000000000000c4"
FORM_DOC = "doc-00000000000000f1"


def intake_record(**overrides: object) -> dict[str, object]:
    """A patient's record as an intake form left it: insurance complete but for what is overridden."""
    rec: dict[str, object] = {
        "patient.first_name": "Jane", "patient.last_name": "Doe", "patient.date_of_birth": "1980-01-02",
        "patient.phone": "2175550142", "patient.address.street": "1 Elm St", "patient.address.city": "Springfield",
        "patient.address.state": "IL", "patient.address.zip": "62701",
        P + "payer_name": "BCBS", P + "member_id": None, P + "group_number": None,
        P + "subscriber_name": "Jane Doe", P + "subscriber_date_of_birth": "1980-01-02",
        P + "relationship_to_patient": "self", "insurance.self_pay": False,
    }
    rec.update(overrides)
    return rec


def card(**values: object) -> ExtractionResult:
    base: dict[str, object] = {P + "payer_name": "Blue Cross Blue Shield of Illinois", P + "member_id": "XGH482177301",
                               P + "group_number": None, P + "subscriber_name": "JANE Q DOE",
                               P + "subscriber_date_of_birth": "1980-01-02", P + "rx_bin": "610014"}
    base.update(values)
    flags = values.pop("_flags", [])  # type: ignore[arg-type]
    base.pop("_flags", None)
    return ExtractionResult(document_type="insurance_card", method="ocr", pages=1,
                            fields={k: FieldResult(value=v) for k, v in base.items()}, flags=list(flags))  # type: ignore[arg-type]


def flags_of(record: dict[str, object]) -> list[Flag]:
    return rule_flags({k: FieldResult(value=v) for k, v in record.items()}, VOCAB, present=set(record))  # type: ignore[arg-type]


# -- merging --------------------------------------------------------------------------------------


def test_the_card_fills_the_blank_member_id_and_the_missing_insurance_flag_clears() -> None:
    record = intake_record()
    before = flags_of(record)
    assert [f.code for f in before if f.code == "insurance.missing_info"] == ["insurance.missing_info"]
    sources = {k: FORM_DOC for k in record}
    merged = merge_card(record, sources, card(), card_document_id=CARD_DOC, vocab=VOCAB, previous_flags=before)
    assert merged.fields[P + "member_id"] == "XGH482177301"
    assert merged.sources[P + "member_id"] == CARD_DOC
    assert merged.sources[P + "payer_name"] == FORM_DOC  # the form's value stays the form's
    assert set(merged.filled) == {P + "member_id", P + "rx_bin"}
    assert set(merged.confirmed) == {P + "payer_name", P + "subscriber_name", P + "subscriber_date_of_birth"}
    assert not merged.conflicts
    assert not [f for f in merged.flags if f.severity == "error"]
    assert {(f.code, f.field) for f in merged.cleared} == {("insurance.missing_info", None), ("missing", P + "member_id")}
    assert record[P + "member_id"] is None  # the input record is not changed in place


def test_the_flag_stays_when_the_card_cannot_supply_what_is_missing() -> None:
    record = intake_record(**{P + "relationship_to_patient": None})
    merged = merge_card(record, {}, card(), card_document_id=CARD_DOC, vocab=VOCAB, previous_flags=flags_of(record))
    codes = {(f.code, f.field) for f in merged.flags}
    assert ("insurance.missing_info", None) in codes and ("missing", P + "relationship_to_patient") in codes
    assert {(f.code, f.field) for f in merged.cleared} == {("missing", P + "member_id")}


def test_conflicts_are_flagged_and_never_overwritten() -> None:
    record = intake_record(**{P + "member_id": "XGH482177399", P + "group_number": "0887234"})
    merged = merge_card(record, {P + "member_id": FORM_DOC}, card(**{P + "group_number": "0887299"}),
                        card_document_id=CARD_DOC, vocab=VOCAB)
    assert merged.fields[P + "member_id"] == "XGH482177399" and merged.fields[P + "group_number"] == "0887234"
    assert merged.sources[P + "member_id"] == FORM_DOC
    assert {c.key for c in merged.conflicts} == {P + "member_id", P + "group_number"}
    conflict_flags = [f for f in merged.flags if f.code == CONFLICT_CODE]
    assert {f.field for f in conflict_flags} == {P + "member_id", P + "group_number"}
    assert all(f.severity == "error" for f in conflict_flags)
    assert all("XGH482177399" not in f.message and "0887299" not in f.message for f in conflict_flags)


def test_a_card_value_with_an_error_is_not_used_and_its_warnings_come_along() -> None:
    warn = Flag(code="member_id.format", severity="warning", field=P + "member_id", message="Member ID format")
    err = Flag(code="invalid", severity="error", field=P + "subscriber_date_of_birth", message="not a date")
    record = intake_record(**{P + "subscriber_date_of_birth": None})
    merged = merge_card(record, {}, card(_flags=[warn, err]), card_document_id=CARD_DOC, vocab=VOCAB)
    assert merged.fields[P + "member_id"] == "XGH482177301"
    assert P + "subscriber_date_of_birth" not in merged.filled
    assert warn in merged.flags


@pytest.mark.parametrize(("key", "a", "b", "same"), [
    (P + "payer_name", "BCBS", "Blue Cross Blue Shield of Illinois", True),
    (P + "payer_name", "UHC", "UnitedHealthcare", True),
    (P + "payer_name", "Aetna", "Cigna", False),
    (P + "subscriber_name", "José García-López", "JOSE GARCIA-LOPEZ", True),
    (P + "subscriber_name", "Jane Doe", "JANE Q DOE", True),
    (P + "subscriber_name", "Jane Doe", "John Doe", False),
    (P + "member_id", "XGH-4821-7730", "XGH48217730", True),
    (P + "subscriber_date_of_birth", "1980-01-02", "01/02/1980", True),
])
def test_values_are_compared_as_the_front_desk_means_them(key: str, a: str, b: str, same: bool) -> None:
    assert same_value(key, a, b) is same


# -- matching -------------------------------------------------------------------------------------

PATIENTS = [
    Candidate("pat-1", "Jane", "Doe", "1980-01-02", ("XGH482177301",)),
    Candidate("pat-2", "Jane", "Doe", "1975-06-30"),  # same name, other birthday
    Candidate("pat-3", "Mary-Kate", "O'Neil", "2001-03-04"),
    Candidate("pat-4", "Ashley", "O'Neil", "2001-03-04"),  # her twin
    Candidate("pat-5", "Liam", "Park", "2019-09-09", ("W123456789",), "Grace Park", "1988-02-02"),
    Candidate("pat-6", "Noah", "Kim", "1990-01-01"),
    Candidate("pat-7", "Noah", "Kim", "1990-01-01"),  # the same name and birthday: no letter can tell
]


@pytest.mark.parametrize(("name", "dob", "mid", "want"), [
    ("JANE Q DOE", "1980-01-02", None, "pat-1"),
    ("Doe, Jane", "01/02/1980", None, "pat-1"),
    ("Jane Doe", "1975-06-30", None, "pat-2"),
    ("MARY-KATE O NEIL", "2001-03-04", None, "pat-3"),
    ("Ashley O'Neil", "2001-03-04", None, "pat-4"),
    ("Jane Doe", None, "XGH-4821-77301", "pat-1"),
    ("Jane Doe", "1999-12-31", None, None),  # nobody born that day
    ("Jane Doe", None, None, None),  # a name alone proves nothing
    ("Noah Kim", "1990-01-01", None, None),  # two records fit: a person decides
    ("Peter Doe", None, "XGH482177301", None),  # the ID is on file for someone of another name
    (None, "1980-01-02", None, None),
])
def test_match_by_name_and_birthday_or_member_id_never_a_guess(name: str | None, dob: str | None,
                                                                mid: str | None, want: str | None) -> None:
    m = match_patient(name=name, date_of_birth=dob, member_id=mid, candidates=PATIENTS)
    assert m.patient_id == want, m.reason
    if want is None:
        assert m.reason and "Doe" not in m.reason and "Kim" not in m.reason


def test_a_parents_card_matches_the_child_whose_policy_holder_they_are() -> None:
    c = card(**{P + "subscriber_name": "GRACE PARK", P + "subscriber_date_of_birth": "1988-02-02",
                P + "member_id": "W999999999"})
    m = match_card(c, PATIENTS)
    assert (m.patient_id, m.matched_by) == ("pat-5", "subscriber_name_dob")


def test_names_fit_with_middle_initials_hyphens_and_comma_order() -> None:
    assert name_fits("JEAN-LUC A GONZALEZ", "Jean-Luc", "Gonzalez")
    assert name_fits("Ana de la Cruz", "Ana", "de la Cruz")
    assert name_fits("GONZALEZ, JEAN-LUC", "Jean-Luc", "Gonzalez")
    assert not name_fits("Jean Gonzalez", "Jean-Luc", "Gonzales")
    assert not name_fits("Gonzalez", "Jean-Luc", "Gonzalez")


# -- end to end through `frontdesk process` and the records ----------------------------------------


@pytest.mark.integration
def test_filing_a_card_fills_the_form_gap_and_clears_the_flag_in_the_record(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    """An intake form without a member ID is filed (insurance.missing_info open); the patient's card is
    filed through the same pipeline, which files it into the record: the member ID is filled with the card
    as its source and the flag is resolved. (tests/test_cards_process.py does the same through the CLI.)"""
    from sqlalchemy import select

    from frontdesk import records
    from frontdesk.db.models import Document, FlagRow, Patient
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.fixtures import cards as card_gen
    from tests.fixtures import generator as gen

    inbox = tmp_path / "inbox"
    case = next(c for seed in range(40)
                for c in gen.generate(inbox / str(seed), 1, seed=seed, kinds=("digital",), scenarios=("member_id_blank",))
                if c.truth[P + "relationship_to_patient"] == "self"
                and c.truth[P + "payer_name"] in {p.canonical for p in card_gen.PAYERS})
    t = case.truth
    holder = card_gen.Holder(str(t["patient.first_name"]), str(t["patient.last_name"]),
                             date.fromisoformat(str(t["patient.date_of_birth"])),
                             group=t[P + "group_number"] if isinstance(t[P + "group_number"], str) else None)
    card_case = card_gen.card_for(holder, str(t[P + "payer_name"]), tmp_path / "cards" / "card-0001",
                                  seed=random.Random(5).randint(0, 999))
    pipeline = Pipeline(settings)
    form_out, = process_batch([case.path], pipeline)
    assert form_out.document_type == "intake_form"
    assert any(f.code == "insurance.missing_info" for f in form_out.flags)
    card_out, = process_batch([card_case.path], pipeline)
    assert card_out.document_type == "insurance_card", card_out.flags
    assert card_out.status == "filed", card_out.flags
    with pipeline.db.begin() as s:
        result = records.extraction_result(s, card_out.record_id)
        assert result is not None and result.value(P + "member_id") == card_case.truth[P + "member_id"]
        # Filing it again finds the same patient and nothing left to fill.
        again = file_card(s, s.get(Document, card_out.record_id), result, vocab=pipeline.reader.vocabulary)
        assert again.match.matched_by == "name_dob" and not again.conflicts, again.match.reason
        assert not again.filled and not again.resolved and not again.flags
    with pipeline.db.begin() as s:
        patient = s.scalars(select(Patient)).one()
        field = next(f for f in patient.fields if f.key == P + "member_id")
        assert (field.value, field.source_document_id) == (card_case.truth[P + "member_id"], card_out.record_id)
        payer = next(f for f in patient.fields if f.key == P + "payer_name")
        assert payer.source_document_id == form_out.record_id
        flags = {(r.code, r.field): r.status for r in s.scalars(select(FlagRow).where(FlagRow.patient_id == patient.id))}
        assert flags[("insurance.missing_info", None)] == "resolved"
        assert flags[("missing", P + "member_id")] == "resolved"
        assert s.get(Document, card_out.record_id).patient_id == patient.id

"""A patient's second insurance card: read as the secondary coverage (the card says so, or its payer and
member ID differ from the primary on file), never written over the primary; the same card again is the
same coverage; the policy holder and their relationship are kept on the coverage; the back of a card read
on its own goes with its front. And the pre-visit check counts a secondary-only patient as insured only
when config says so."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from frontdesk.cards import choose_rank, merge_card
from frontdesk.fields import load_vocabulary
from frontdesk.models import ExtractionResult, FieldResult
from tests.fixtures import cards as card_gen
from tests.fixtures import generator as gen

ROOT = Path(__file__).resolve().parents[1]
VOCAB = load_vocabulary(ROOT / "config" / "fields.yaml")
P = "insurance.primary."
S = "insurance.secondary."
CARD_DOC = "doc-00000000000000c4"
FORM_DOC = "doc-00000000000000f1"
CARD_PAYERS = ("Aetna", "UnitedHealthcare", "Cigna", "Humana")


def on_file(**overrides: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "patient.first_name": "Jane", "patient.last_name": "Doe", "patient.date_of_birth": "1980-01-02",
        P + "payer_name": "Aetna", P + "member_id": "W123456789", P + "group_number": "0887234",
        P + "subscriber_name": "Jane Doe", P + "subscriber_date_of_birth": "1980-01-02",
        P + "relationship_to_patient": "self", "insurance.self_pay": False,
    }
    rec.update(overrides)
    return rec


def card(**values: object) -> ExtractionResult:
    base: dict[str, object] = {P + "payer_name": "Cigna", P + "member_id": "U1234567801", P + "group_number": None,
                               P + "subscriber_name": "JOHN DOE", P + "subscriber_date_of_birth": "1978-05-06",
                               P + "rx_bin": "610014", "card.side": "front", "card.rank": None}
    base.update(values)
    return ExtractionResult(document_type="insurance_card", method="ocr", pages=1,
                            fields={k: FieldResult(value=v) for k, v in base.items()})  # type: ignore[arg-type]


# -- which coverage a card is ----------------------------------------------------------------------


@pytest.mark.parametrize(("record", "values", "rank"), [
    (on_file(), {}, "secondary"),  # another payer, another member ID
    (on_file(), {P + "payer_name": "Aetna", P + "member_id": "W123456789"}, "primary"),  # the primary's card
    (on_file(), {P + "payer_name": "Aetna", P + "member_id": "W123456780"}, "primary"),  # a typo: a conflict
    (on_file(), {P + "payer_name": "Aetna", P + "member_id": "W123456780", "card.rank": "secondary"}, "secondary"),
    (on_file(**{P + "payer_name": None, P + "member_id": None}), {}, "primary"),  # no primary yet
    (on_file(**{S + "payer_name": "Cigna", S + "member_id": "U1234567801"}), {}, "secondary"),  # seen before
    (on_file(**{P + "member_id": None}), {}, "primary"),  # the form's ID is blank: the card is asked for it
])
def test_a_card_is_the_coverage_it_belongs_to(record: dict[str, object], values: dict[str, object],
                                               rank: str) -> None:
    assert choose_rank(record, card(**values)).rank == rank  # type: ignore[arg-type]


def test_a_secondary_card_fills_the_secondary_and_leaves_the_primary_alone() -> None:
    record = on_file()
    sources = {k: FORM_DOC for k in record}
    merged = merge_card(record, sources, card(), card_document_id=CARD_DOC, vocab=VOCAB, rank="secondary",
                        implied={S + "relationship_to_patient": "spouse"})
    assert {k: merged.fields[k] for k in record if k.startswith(P)} == {k: v for k, v in record.items()
                                                                        if k.startswith(P)}
    assert all(merged.sources[k] == FORM_DOC for k in record)
    assert merged.fields[S + "payer_name"] == "Cigna" and merged.fields[S + "member_id"] == "U1234567801"
    assert merged.fields[S + "subscriber_name"] == "JOHN DOE"
    assert merged.fields[S + "subscriber_date_of_birth"] == "1978-05-06"
    assert merged.fields[S + "relationship_to_patient"] == "spouse"
    assert merged.fields[S + "rx_bin"] == "610014"
    assert not merged.conflicts and all(merged.sources[k] == CARD_DOC for k in merged.filled)


def test_a_second_different_secondary_card_is_a_conflict_not_an_overwrite() -> None:
    record = on_file(**{S + "payer_name": "Humana", S + "member_id": "H12345678"})
    merged = merge_card(record, {}, card(), card_document_id=CARD_DOC, vocab=VOCAB, rank="secondary")
    assert merged.fields[S + "member_id"] == "H12345678"
    assert {c.key for c in merged.conflicts} == {S + "payer_name", S + "member_id"}


# -- generated cards through the pipeline ---------------------------------------------------------


def intake(folder: Path) -> gen.Case:
    """A complete digital intake form of a patient who holds their own policy with a payer cards are made
    for."""
    for seed in range(60):
        case = gen.generate(folder / str(seed), 1, seed=seed, kinds=("digital",), scenarios=("complete",),
                            today=date(2026, 11, 1))[0]
        if case.truth[P + "relationship_to_patient"] == "self" and case.truth[P + "payer_name"] in CARD_PAYERS:
            (folder / str(seed) / "truth.json").unlink()
            return case
    raise AssertionError("no suitable intake case in 60 seeds")


def holder(case: gen.Case, member_id: str | None = None) -> card_gen.Holder:
    t = case.truth
    return card_gen.Holder(str(t["patient.first_name"]), str(t["patient.last_name"]),
                           date.fromisoformat(str(t["patient.date_of_birth"])), member_id=member_id)


def patient_fields(pipeline: Any) -> dict[str, tuple[object, str | None]]:
    from sqlalchemy import select

    from frontdesk.db.models import Patient

    with pipeline.db.begin() as s:
        patient = s.scalars(select(Patient)).one()
        return {f.key: (f.value, f.source_document_id) for f in patient.fields}


def read_back(pipeline: Any, record_id: str | None) -> ExtractionResult:
    from frontdesk import records

    with pipeline.db.begin() as s:
        result = records.extraction_result(s, record_id)
    assert result is not None
    return result


def _patient_id(pipeline: Any) -> str:
    from sqlalchemy import select

    from frontdesk.db.models import Patient

    with pipeline.db.begin() as s:
        return str(s.scalars(select(Patient.id)).one())


def card_rows(pipeline: Any) -> dict[str, tuple[str, str, str | None]]:
    from sqlalchemy import select

    from frontdesk.db.models import InsuranceCard

    with pipeline.db.begin() as s:
        return {r.document_id: (r.rank, r.side, r.front_document_id) for r in s.scalars(select(InsuranceCard))}


@pytest.mark.integration
def test_a_second_card_is_the_secondary_and_the_same_card_again_is_one_coverage(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from frontdesk.console import create_app
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline
    from tests.console_helpers import add_user, console_settings, sign_in

    settings = console_settings(tmp_path)

    case = intake(tmp_path / "forms")
    other = next(p for p in CARD_PAYERS if p != case.truth[P + "payer_name"])
    seed = random.Random(16).randint(0, 999)
    first = card_gen.card_for(holder(case), other, tmp_path / "cards" / "card-0001", seed=seed, capture="crop")
    again = card_gen.card_for(holder(case), other, tmp_path / "cards" / "card-0002", seed=seed, capture="scan")
    assert first.truth == again.truth  # one card, two captures

    pipeline = Pipeline(settings)
    form_out, = process_batch([case.path], pipeline)
    before = {k: v for k, v in patient_fields(pipeline).items() if k.startswith(P)}
    assert before[P + "member_id"] == (case.truth[P + "member_id"], form_out.record_id)

    out1, = process_batch([first.path], pipeline)
    assert out1.document_type == "insurance_card", out1.flags
    assert not [f for f in out1.flags if f.code in ("card.conflict", "card.unmatched")], out1.flags
    after = patient_fields(pipeline)
    assert {k: v for k, v in after.items() if k.startswith(P)} == before  # the primary is untouched
    assert after[S + "payer_name"] == (other, out1.record_id)
    assert after[S + "member_id"] == (first.truth[P + "member_id"], out1.record_id)
    assert after[S + "subscriber_name"][0] == first.truth[P + "subscriber_name"]
    assert after[S + "relationship_to_patient"] == ("self", out1.record_id)  # the card is in her own name
    assert card_rows(pipeline)[out1.record_id][0] == "secondary"

    out2, = process_batch([again.path], pipeline)
    assert not [f for f in out2.flags if f.code in ("card.conflict", "card.unmatched")], out2.flags
    assert card_rows(pipeline)[out2.record_id][0] == "secondary"
    final = patient_fields(pipeline)
    assert final == after  # nothing new: confirmed, not a second coverage, the first card stays the source

    # The patient page shows both coverages, each with its card.
    add_user(settings, "reception")
    with TestClient(create_app(settings)) as client:
        sign_in(client, "reception")
        patient_id = _patient_id(pipeline)
        page = client.get(f"/patients/{patient_id}").text
    primary, secondary = page.index("<h2>Primary insurance</h2>"), page.index("<h2>Secondary insurance</h2>")
    assert primary < secondary
    sec_part = page[secondary:page.index("</section>", secondary)]
    assert first.truth[P + "member_id"] in sec_part and "Card on file" in sec_part
    assert str(case.truth[P + "member_id"]) in page[primary:secondary]


@pytest.mark.integration
def test_a_card_that_says_secondary_is_the_secondary_even_for_the_same_payer(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline

    case = intake(tmp_path / "forms")
    payer = str(case.truth[P + "payer_name"])
    sec = card_gen.card_for(holder(case), payer, tmp_path / "cards" / "card-0001",
                            seed=random.Random(17).randint(0, 999), secondary=True)
    pipeline = Pipeline(settings)
    process_batch([case.path], pipeline)
    before = {k: v for k, v in patient_fields(pipeline).items() if k.startswith(P)}
    out, = process_batch([sec.path], pipeline)
    assert out.document_type == "insurance_card", out.flags
    assert read_back(pipeline, out.record_id).value("card.rank") == "secondary"
    assert not [f for f in out.flags if f.code == "card.conflict"], out.flags  # not a clash with the primary
    after = patient_fields(pipeline)
    assert {k: v for k, v in after.items() if k.startswith(P)} == before
    assert after[S + "member_id"][0] == sec.truth[P + "member_id"]


@pytest.mark.integration
def test_the_back_of_a_card_goes_with_its_front(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from frontdesk.intake import process_batch
    from frontdesk.pipeline import Pipeline

    case = intake(tmp_path / "forms")
    payer = str(case.truth[P + "payer_name"])
    seed = random.Random(18).randint(0, 999)
    h = holder(case, member_id=str(case.truth[P + "member_id"]))
    front = card_gen.card_for(h, payer, tmp_path / "cards" / "card-0001-a", seed=seed, side="front")
    back = card_gen.card_for(h, payer, tmp_path / "cards" / "card-0001-b", seed=seed, side="back")
    pipeline = Pipeline(settings)
    process_batch([case.path], pipeline)
    before = patient_fields(pipeline)

    # The back of another card of this payer, with no front read before it: nobody can tell whose it is.
    stray = card_gen.card_for(h, payer, tmp_path / "cards" / "card-0000-b", seed=seed + 1, side="back")
    lonely, = process_batch([stray.path], pipeline)
    assert lonely.document_type == "insurance_card", lonely.flags
    assert read_back(pipeline, lonely.record_id).value("card.side") == "back"
    assert [f.code for f in lonely.flags if f.severity == "error"] == ["card.unmatched"], lonely.flags

    f_out, b_out = process_batch([front.path, back.path], pipeline)
    assert read_back(pipeline, f_out.record_id).value("card.side") == "front"
    assert read_back(pipeline, b_out.record_id).value("card.side") == "back"
    assert b_out.status == "filed", b_out.flags
    rows = card_rows(pipeline)
    assert rows[b_out.record_id] == ("primary", "back", f_out.record_id)
    assert rows[f_out.record_id] == ("primary", "front", None)
    after = patient_fields(pipeline)
    assert not [k for k, (_v, src) in after.items() if k.startswith(S) and src in (f_out.record_id, b_out.record_id)]
    assert {k: v for k, v in after.items() if k in before} == before  # the form's coverage stays as it was
    from extractors.cards import BACK_KEYS

    assert {k for k, (_v, src) in after.items() if src == b_out.record_id} <= set(BACK_KEYS)


# -- the pre-visit check: a patient with only a secondary coverage ---------------------------------


@pytest.mark.parametrize("counts", [False, True])
def test_a_secondary_only_patient_is_insured_for_the_check_only_when_config_says_so(tmp_path: Path,
                                                                                   counts: bool) -> None:
    import yaml

    from frontdesk.checks.config import load_checks
    from tests.test_check_rules import codes, record

    data = yaml.safe_load((ROOT / "config" / "checks.yaml").read_text(encoding="utf-8"))
    assert data["secondary_counts_as_insured"] is False  # shipped: the primary is still asked for
    data["secondary_counts_as_insured"] = counts
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    checks = load_checks(path, payers_file=tmp_path / "none.yaml")
    only_secondary = record(**{"insurance__primary__payer_name": None, "insurance__primary__member_id": None,
                               "insurance__primary__subscriber_name": None,
                               "insurance__primary__relationship_to_patient": None,
                               "insurance__secondary__payer_name": "Cigna",
                               "insurance__secondary__member_id": "U1234567801"})
    assert ("insurance.primary.incomplete" in codes(only_secondary, checks=checks)) is not counts
    # Without a complete secondary the primary is asked for either way.
    neither = record(**{"insurance__primary__payer_name": None, "insurance__primary__member_id": None})
    assert "insurance.primary.incomplete" in codes(neither, checks=checks)

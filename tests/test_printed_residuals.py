"""Printed documents of layouts Frontdesk does not ship, where a wrong result used to come with full confidence.

* a flattened PDF whose ticked boxes carry a viewer's mark (ZapfDingbats' filled square is the letter "n",
  its check mark "4"; a text font's check mark drawn larger than a small box);
* a filled digital copy of a practice's own form (its page a scanned picture, its fields named by
  Frontdesk's keys) handed with ``--forms-dir``: it is that form, not the shipped one;
* a card that prints only a short payer name ("Anthem"), and a name whose diaeresis the OCR echoes
  (Anaïs read as Anaïťs).
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from pathlib import Path

import pytest
from faker import Faker

from extractors import classify
from frontdesk.extraction import Reader, to_result
from frontdesk.fields import load_vocabulary
from frontdesk.settings import load_settings
from tests.fixtures import byof
from tests.fixtures import cards as card_gen
from tests.fixtures import generator as gen

REPO = Path(__file__).resolve().parents[1]
CHECKBOXES = ("insurance.self_pay", "consent.hipaa_acknowledgment")


@pytest.fixture(scope="module")
def westlake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Reader, Path, Path]:
    """Westlake's form (not the shipped one) in a forms folder handed to the reader, as ``--forms-dir``."""
    forms = tmp_path_factory.mktemp("forms")
    template = byof.build("westlake", "canonical", forms / "westlake_info.pdf")
    return Reader(load_settings(), [forms]), forms, template


def test_flattened_printed_ticks_are_read_on_an_unshipped_layout(westlake: tuple[Reader, Path, Path],
                                                                 tmp_path: Path) -> None:
    reader, _forms, template = westlake
    cases = gen.generate(tmp_path, 2 * len(gen.MARKS), seed=404, kinds=("flattened",),
                         scenarios=("self_pay", "complete"), template=template, marks=gen.MARKS,
                         today=date(2026, 11, 15))
    ticked = 0
    for case in cases:
        result = reader.extract(case.path)
        assert result.form == "westlake_info"
        for key in CHECKBOXES:
            assert result.value(key) is case.truth[key], (case.case_id, key)
            ticked += case.truth[key] is True
        # A patient who pays for himself gets no missing-insurance flag (and no letter).
        insurance_flag = any(f.code == "insurance.missing_info" for f in result.flags)
        assert insurance_flag == (("insurance.missing_info", None) in case.expected_flags), case.case_id
    assert ticked >= len(gen.MARKS)  # every kind of mark was read at least once


def test_a_letter_typed_into_a_box_goes_to_a_person(westlake: tuple[Reader, Path, Path], tmp_path: Path) -> None:
    """ "n" in a text font is not ZapfDingbats' square: a letter in a box is not taken for yes or no."""
    reader, _forms, template = westlake
    rnd = random.Random(8)
    fake = Faker("en_US")
    fake.seed_instance(8)
    values, _truth = gen._make_record(rnd, fake, "complete", date(2026, 11, 15))
    on_form = gen.widget_rects(template)  # the practice's form asks for less than the whole vocabulary
    values = {k: v for k, v in values.items() if k in on_form}
    values["insurance.self_pay"] = "n"
    out = tmp_path / "typed-n.pdf"
    gen.fill_flattened(template, values, out)
    result = reader.extract(out)
    assert any(f.field == "insurance.self_pay" and f.severity == "warning" for f in result.flags)


def test_a_digital_copy_of_a_practices_own_form_is_that_form(tmp_path: Path) -> None:
    """Both forms name their fields by Frontdesk's keys and the practice's page is a picture (no printed
    words): where the boxes sit tells them apart."""
    forms = tmp_path / "forms"
    template = byof.picture_form("westlake", forms / "westlake_scanned.pdf")
    reader = Reader(load_settings(), [forms])
    rnd = random.Random(505)
    fake = Faker("en_US")
    fake.seed_instance(505)
    for scenario in ("complete", "self_pay"):
        values, truth = byof.record("westlake", rnd, fake, scenario)
        filled = byof.fill_named(template, {k: k for k in values}, values, tmp_path / f"{scenario}.pdf")
        result = reader.extract(filled)
        assert result.form == "westlake_scanned"
        assert {k: result.value(k) for k in truth} == truth
    # The shipped form is still itself.
    values, _truth = byof.record_for(set(gen.widget_rects(gen.DEFAULT_TEMPLATE)), rnd, fake, "complete")
    shipped = tmp_path / "shipped.pdf"
    gen.fill_digital(gen.DEFAULT_TEMPLATE, values, shipped)
    assert reader.extract(shipped).form == "new_patient_intake"


def _plain_card(i: int, out: Path, payer: card_gen.Payer, first: str, last: str) -> card_gen.CardCase:
    """One card of the ``plain`` layout (no payer prints this way by default) photographed by a phone."""
    r = random.Random(1700 + i)
    fake = Faker()
    fake.seed_instance(1700 + i)
    holder = card_gen.Holder(first, last, date(1980, 3, 4 + i))
    ct, layout, faces = card_gen.render_card(r, fake, date(2026, 11, 15), payer=payer, holder=holder,
                                             layout="plain")
    path = card_gen.save_capture([card_gen.photograph(f, r) for f in faces], "photo", out / f"card-{i}", r)
    return card_gen.CardCase(f"card-{i}", "photo", layout, path, len(faces), dict(ct.truth))


def test_cards_short_payer_names_and_echoed_accents_go_to_a_person(tmp_path: Path) -> None:
    vocab = load_vocabulary(REPO / "config" / "fields.yaml")
    payers = {p.canonical: p for p in card_gen.PAYERS}
    anthem = dataclasses.replace(payers["Anthem Blue Cross Blue Shield"], printed=("Anthem", "ANTHEM"))
    cases = [(_plain_card(0, tmp_path, anthem, "Anaïs", "Lefèvre"), True),
             (_plain_card(9, tmp_path, payers["Aetna"], "Moïse", "Brontë"), False)]
    for case, short in cases:
        rec = classify.read_file(case.path)
        assert rec.document is not None, case.case_id
        result = to_result(rec.document, vocab, 0.8)
        flagged = {(f.field, f.code) for f in result.flags if f.severity in ("warning", "error")}
        payer_key, name_key = "insurance.primary.payer_name", "insurance.primary.subscriber_name"
        assert result.value(payer_key) == case.truth[payer_key]
        # "Anthem" alone is several plans: the gazetteer's full name is a guess a person confirms.
        assert ((payer_key, "payer.short_name") in flagged) == short, case.case_id
        # The echo of the diaeresis (Anaïťs, Moïäse) is taken out, and a person still looks.
        assert result.value(name_key) == case.truth[name_key], case.case_id
        assert any(field == name_key for field, _code in flagged), case.case_id

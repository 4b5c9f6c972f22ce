"""Insurance cards read from images (OCR): phone photos, flatbed copies, card-scanner crops. The full
accuracy tables are in ``bench/accuracy_cards.py``; this is a small sample with the same floors."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from extractors import cards, classify
from frontdesk.extraction import to_result
from frontdesk.fields import load_vocabulary
from tests.fixtures import cards as card_gen

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
VOCAB = load_vocabulary(ROOT / "config" / "fields.yaml")
P = "insurance.primary."


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[card_gen.CardCase]:
    return card_gen.generate_cards(tmp_path_factory.mktemp("cards"), 9, seed=31)


def test_a_sample_of_cards_is_read_within_the_accuracy_floors(sample: list[card_gen.CardCase]) -> None:
    right = dict.fromkeys(("payer_name", "member_id", "group_number", "subscriber_name"), 0)
    silent_wrong = 0
    for case in sample:
        rec = classify.read_file(case.path)
        assert rec.document_type == "insurance_card", (case.case_id, rec.reason)
        result = to_result(rec.document, VOCAB, 0.8)  # type: ignore[arg-type]
        flagged = {f.field for f in result.flags if f.severity in ("warning", "error")}
        for key in right:
            good = result.value(P + key) == case.truth[P + key]
            right[key] += good
            silent_wrong += (not good) and (P + key) not in flagged and result.value(P + key) is not None
        assert any(f.code == "member_id.format" for f in result.flags) == bool(case.expected_warnings)
    n = len(sample)
    assert right["payer_name"] == n and right["member_id"] >= n - 1 and right["group_number"] >= n - 1, right
    assert right["subscriber_name"] >= n - 2, right
    assert silent_wrong <= 1


def test_an_upside_down_photo_is_turned_and_read(sample: list[card_gen.CardCase], tmp_path: Path) -> None:
    case = next(c for c in sample if c.capture == "crop" and c.sides == 1)
    img = cv2.imread(str(case.path), cv2.IMREAD_GRAYSCALE)
    turned = tmp_path / "turned.png"
    cv2.imwrite(str(turned), cv2.rotate(img, cv2.ROTATE_180))
    rec = classify.read_file(turned)
    assert rec.document_type == "insurance_card", rec.reason
    assert rec.document is not None
    assert rec.document.fields[P + "payer_name"].raw == case.truth[P + "payer_name"]


def test_reading_the_sample_built_the_pipeline_once(sample: list[card_gen.CardCase]) -> None:
    before = cards.BUILDS["card"]
    classify.read_file(sample[0].path)
    assert before >= 1  # the sample fixture already read cards, so the pipeline exists
    assert cards.BUILDS["card"] == before  # and reading another card did not build it again

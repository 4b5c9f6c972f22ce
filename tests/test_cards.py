"""Reading insurance cards from positioned words: labels, values right of or below them, the payer, the
member-ID format. No OCR here (words are laid out by hand), so these run in milliseconds."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from extractors import cards
from extractors import nlp as N
from tests.fixtures import cards as card_gen

P = "insurance.primary."
H = 30.0  # text height in these layouts
CW = 0.6 * H  # width of a character


def layout(*rows: tuple[float, float, str], h: float = H, page: int = 1) -> list[N.WordBox]:
    """Words from (x, y, text) runs: x and y in text heights, words one space apart."""
    out = []
    for x, y, text in rows:
        cx = x * h
        for word in text.split(" "):
            w = len(word) * 0.6 * h
            out.append(N.WordBox(word, cx, y * h, cx + w, y * h + h, page, 0.95))
            cx += w + 0.6 * h
    return out


def big(x: float, y: float, text: str) -> list[N.WordBox]:
    return layout((x / 1.8, y / 1.8, text), h=H * 1.8)


def read(words: list[N.WordBox]) -> cards.CardReading:
    return cards.read_card_words(words)


@pytest.mark.parametrize("label", ["Member ID", "ID#", "ID #", "Subscriber ID", "Identification Number",
                                   "Member ID#:", "ID No.", "Identification No.:"])
@pytest.mark.parametrize("group_label", ["Group", "GRP", "Group No.", "GRP#", "Group Number:"])
def test_label_wordings_right_of_their_label(label: str, group_label: str) -> None:
    words = big(1, 0, "Aetna") + layout((1, 3, "Member: JANE Q DOE"), (1, 4.5, f"{label} W123456789"),
                                        (1, 6, f"{group_label} 0887234"), (20, 3, "RxBIN: 610502"))
    r = read(words)
    assert r.fields[P + "member_id"].raw == "W123456789"
    assert r.fields[P + "group_number"].raw == "0887234"
    assert r.fields[P + "subscriber_name"].raw == "JANE Q DOE"
    assert r.fields[P + "payer_name"].raw == "Aetna"
    assert r.fields[P + "rx_bin"].raw == "610502"
    assert not r.flags


def test_values_below_small_labels_in_two_columns() -> None:
    """Stacked layout: labels in small print, values under them; 'Group No.' on the member ID's line
    must not be taken for the member ID."""
    words = big(1, 0, "Cigna") + layout(
        (1, 3, "Subscriber Name"), (1, 4.2, "Jean-Luc O'Neil"),
        (1, 6, "Identification No."), (18, 6, "Group No."),
        (1, 7.2, "U1234567801"), (18, 7.2, "MXA12904"),
        (1, 9, "Date of Birth"), (1, 10.2, "07/12/1945"),
    )
    r = read(words)
    assert r.fields[P + "subscriber_name"].raw == "Jean-Luc O'Neil"
    assert r.fields[P + "member_id"].raw == "U1234567801"
    assert r.fields[P + "group_number"].raw == "MXA12904"
    assert r.fields[P + "subscriber_date_of_birth"].raw == "07/12/1945"
    assert "below" in r.how[P + "member_id"]


def test_table_layout_with_a_wide_gap_between_label_and_value() -> None:
    words = big(1, 0, "UMR") + layout((1, 3, "Member Name"), (14, 3, "ANA-MARÍA HARRISON"),
                                      (1, 4.5, "Member ID"), (14, 4.5, "VH21539743"),
                                      (1, 6, "Group"), (14, 6, "59215195"),
                                      (1, 7.5, "Plan"), (14, 7.5, "Silver HDHP"),
                                      (1, 9, "Rx BIN"), (14, 9, "610097"),
                                      (1, 10.5, "RxPCN"), (14, 10.5, "BCTX"))
    r = read(words)
    assert r.fields[P + "subscriber_name"].raw == "ANA-MARÍA HARRISON"
    assert r.fields[P + "member_id"].raw == "VH21539743"
    assert r.fields[P + "plan_type"].raw == "HDHP"
    assert r.fields[P + "rx_pcn"].raw == "BCTX"


def test_phrases_that_look_like_labels_are_never_values() -> None:
    """'Member Services' is not a name, a phone number is not a member ID, 'Group Name' holds no group
    number, and an emergency-room sentence on the back is not a copay."""
    words = layout((1, 0, "Member Services: 1-800-555-0199"), (1, 1.5, "Group Name: ACME TOOLS"),
                   (1, 3, "In an emergency, go to the nearest hospital."), (1, 4.5, "Case Number 395-3834627"))
    r = read(words)
    for key in ("subscriber_name", "member_id", "group_number", "copay_emergency"):
        assert r.fields[P + key].raw is None, key


def test_copays_rx_numbers_and_payer_id() -> None:
    words = big(1, 0, "Humana") + layout(
        (1, 3, "Name: THOMAS FOSTER"), (20, 3, "RXBIN: 015581"), (1, 4.5, "ID: H02807038"), (20, 4.5, "RxPCN: ADV"),
        (20, 6, "RxGrp: RX4471"), (1, 6, "EDI Payer ID: 61101"),
        (1, 9, "PCP $25   Specialist $50   Urgent Care $75   ER $400"))
    r = read(words)
    got = {k: r.fields[P + k].raw for k in ("rx_bin", "rx_pcn", "rx_group", "payer_id", "copay_primary_care",
                                             "copay_specialist", "copay_urgent_care", "copay_emergency")}
    assert got == {"rx_bin": "015581", "rx_pcn": "ADV", "rx_group": "RX4471", "payer_id": "61101",
                   "copay_primary_care": "$25", "copay_specialist": "$50", "copay_urgent_care": "$75",
                   "copay_emergency": "$400"}


def test_payer_is_the_most_prominent_payer_name_never_a_pbm_or_the_members_name() -> None:
    words = (big(1, 0, "aetna") + layout((1, 3, "Member: OSCAR SMITH"), (1, 4.5, "ID# W123456789"),
                                         (1, 8, "Pharmacy benefits by Express Scripts"),
                                         (1, 9.5, "Send claims to: Humana, PO Box 14601")))
    r = read(words)
    assert r.fields[P + "payer_name"].raw == "Aetna"
    only_pbm = read(layout((1, 0, "Pharmacy benefits by CVS Caremark"), (1, 2, "ID# W123456789")))
    assert only_pbm.fields[P + "payer_name"].raw is None


def test_a_more_specific_name_on_the_back_wins_over_a_short_alias_on_the_front() -> None:
    """'BlueCross BlueShield' alone names the local Blue plan; the back says which one it really is."""
    front = big(1, 0, "BlueCross BlueShield") + layout((1, 3, "Member ID# PCM745370204"))
    back = layout((1, 1, "Send claims to: BlueCross BlueShield of Texas, PO Box 660044"), page=2)
    assert read(front).fields[P + "payer_name"].raw == "Blue Cross Blue Shield of Illinois"
    assert read(front + back).fields[P + "payer_name"].raw == "Blue Cross Blue Shield of Texas"


@pytest.mark.parametrize(("printed", "payer"), [("UnitedHeaIthcare", "UnitedHealthcare"),
                                                 ("BlueCrossBlueShield of Illinois", "Blue Cross Blue Shield of Illinois"),
                                                 ("MOLlNA HEALTHCARE", "Molina Healthcare")])
def test_payer_names_damaged_by_ocr_are_found_within_a_small_distance(printed: str, payer: str) -> None:
    words = big(1, 0, printed) + layout((1, 3, "Member ID: 123456789"))
    assert read(words).fields[P + "payer_name"].raw == payer


def test_member_id_of_the_wrong_shape_gets_a_warning_and_ambiguous_characters_are_repaired() -> None:
    bad = read(big(1, 0, "Aetna") + layout((1, 3, "Member ID: A12345678")))
    assert [(f.code, f.severity, f.field) for f in bad.flags] == [("member_id.format", "warning", P + "member_id")]
    assert "A12345678" not in bad.flags[0].message  # flags name fields, never values
    fixed = read(big(1, 0, "Aetna") + layout((1, 3, "Member ID: W12345678O")))
    assert fixed.fields[P + "member_id"].raw == "W123456780"
    assert fixed.fields[P + "member_id"].confidence <= 0.85
    assert not fixed.flags
    medicare = read(big(1, 0, "MEDICARE HEALTH INSURANCE") + layout((1, 3, "Medicare Number"), (1, 4.2, "1EG4-TE5-MK73")))
    assert medicare.fields[P + "member_id"].raw == "1EG4-TE5-MK73" and not medicare.flags


def test_repair_only_when_exactly_one_small_change_fits() -> None:
    assert cards.repair_member_id("ABC12345O", re.compile(r"^[A-Z0-9]{3}\d{6}$")) == "ABC123450"
    assert cards.repair_member_id("O0", re.compile(r"^(00|OO)$")) is None  # two readings fit equally
    assert cards.repair_member_id("OOOIII", re.compile(r"^\d{6}$")) is None  # too many changes
    assert cards.repair_member_id("XYZ", re.compile(r"^\d{3}$")) is None  # nothing OCR confuses


# -- gazetteer ------------------------------------------------------------------------------------


def test_gazetteer_has_forty_payers_with_aliases_ids_and_patterns() -> None:
    gaz = N.load_gazetteer(N.DEFAULT_PAYERS)
    payers = [e for e in gaz.entries if e.kind == "payer"]
    assert len(payers) >= 40
    assert gaz.lookup("BCBS").name == "Blue Cross Blue Shield of Illinois"  # type: ignore[union-attr]
    assert gaz.lookup("UHC").name == "UnitedHealthcare"  # type: ignore[union-attr]
    assert gaz.lookup("United Health Care, Inc.").name == "UnitedHealthcare"  # type: ignore[union-attr]
    assert gaz.lookup("Acme Widgets") is None
    for e in gaz.entries:
        assert e.payer_id is None or re.fullmatch(r"\d{5}", e.payer_id), e.name


def test_gazetteer_knows_every_payer_the_card_generator_prints() -> None:
    gaz = N.load_gazetteer(N.DEFAULT_PAYERS)
    for p in card_gen.PAYERS:
        assert p.canonical in gaz.by_name, p.canonical
        entry = gaz.by_name[p.canonical]
        if p.payer_id:
            assert entry.payer_id == p.payer_id, p.canonical
        if entry.member_id is not None:
            r = random.Random(3)
            for _ in range(20):
                assert entry.member_id.fullmatch(p.member_id(r)), p.canonical
                if p.bad_member_id:
                    assert not entry.member_id.fullmatch(p.bad_member_id(r)), p.canonical


def test_medicare_pattern_is_the_mbi_format() -> None:
    pattern = N.load_gazetteer(N.DEFAULT_PAYERS).by_name["Medicare"].member_id
    assert pattern is not None
    r = random.Random(1)
    for _ in range(200):
        assert pattern.fullmatch(card_gen.mbi(r))
    for bad in ("1EG4TE5MK7", "0EG4TE5MK73", "1SG4TE5MK73", "1EG4TE5MO73", "1EGATE5MK73", "1EG4TE5MK7B"):
        assert not pattern.fullmatch(bad), bad


def test_a_broken_pattern_in_the_gazetteer_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "payers.yaml"
    bad.write_text("payers:\n  - name: X\n    member_id: '^[A-Z'\n", encoding="utf-8")
    with pytest.raises(N.GazetteerError, match="X"):
        N.load_gazetteer(bad)


def test_checks_config_reads_the_same_gazetteer() -> None:
    """Issue #7's pre-visit checks read config/payers.yaml for member-ID formats: both readers agree."""
    from frontdesk.checks.config import load_checks

    root = Path(__file__).resolve().parents[1]
    loaded = load_checks(root / "config" / "checks.yaml", root / "config" / "payers.yaml")
    gaz = N.load_gazetteer(N.DEFAULT_PAYERS)
    for name in ("Aetna", "UHC", "BCBS", "Humana", "Tricare"):
        fmt = loaded.payers.for_payer(name)
        entry = gaz.lookup(name)
        assert fmt is not None and entry is not None and entry.member_id is not None
        assert fmt.pattern is not None and fmt.pattern.pattern == entry.member_id.pattern


# -- pipeline -------------------------------------------------------------------------------------


def test_the_card_pipeline_is_built_once_per_process() -> None:
    first = cards.card_nlp()
    builds = cards.BUILDS["card"]
    for _ in range(3):
        read(big(1, 0, "Cigna") + layout((1, 3, "ID: U1234567801")))
    assert cards.card_nlp() is first
    assert cards.BUILDS["card"] == builds
    assert [name for name, _ in first.pipeline] == ["join_hyphenated", "card_labels", "card_entities",
                                                    "one_line_entities", "card_fields", "card_payer"]


def test_tokens_carry_their_word_positions() -> None:
    nlp = cards.card_nlp()
    doc = N.make_doc(nlp, layout((2, 1, "ID#W123456789 Copay$60")))
    assert [t.text for t in doc] == ["ID", "#", "W123456789", "Copay", "$", "60"]
    hash_tok = doc[1]
    assert hash_tok._.x0 == pytest.approx(2 * H + 2 * CW) and hash_tok._.x1 == pytest.approx(2 * H + 3 * CW)
    assert {t._.line for t in doc} == {0} and {t._.page for t in doc} == {1}


# -- generator ------------------------------------------------------------------------------------


def test_card_generator_is_seeded_and_writes_truth(tmp_path: Path) -> None:
    a = card_gen.generate_cards(tmp_path / "a", 3, seed=4)
    b = card_gen.generate_cards(tmp_path / "b", 3, seed=4)
    assert [c.truth for c in a] == [c.truth for c in b]
    # Images are identical; PDF wrappers carry their creation time.
    assert [c.path.read_bytes() for c in a if c.path.suffix != ".pdf"] == \
        [c.path.read_bytes() for c in b if c.path.suffix != ".pdf"]
    truth = json.loads((tmp_path / "a" / "truth.json").read_text(encoding="utf-8"))
    assert [t["file"] for t in truth] == [c.path.name for c in a]
    assert {c.capture for c in a} == set(card_gen.CAPTURES)
    for c in a:
        assert c.path.name.startswith("card-")  # file names carry the case id only
        assert set(c.truth) == set(cards.CARD_KEYS)

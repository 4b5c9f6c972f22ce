"""Read an insurance card from its words: which payer, and the values next to the card's labels.

No template: every payer prints its own layout and names its fields its own way. The pipeline is a blank
English spaCy pipeline over tokens that carry their position (:mod:`extractors.nlp`):

1. ``card_labels`` (SpanRuler): the label wordings payers use, e.g. ``Member ID`` / ``ID#`` /
   ``Subscriber ID`` / ``Identification Number`` all mark the member ID; phrases that look like labels
   but are not fields (``Member Services``, ``Group Name``, ``Case Number``) are labels too, so they stop
   a value and are never taken for one.
2. ``card_entities`` (EntityRuler): payer names and aliases from ``config/payers.yaml``, and plan types.
3. ``card_fields``: for each label, the value right of it on its line or, when there is none that fits,
   the value printed under it; each kind of value has a shape (six digits for an Rx BIN, a dollar amount
   for a copay) so a neighbouring word of the wrong kind is never taken.
4. ``card_payer``: the payer is the most prominent payer name on the card (largest print, front first),
   never a pharmacy benefit manager; OCR-damaged names are matched within a small edit distance.

The member ID is then checked against the payer's pattern from the gazetteer: a misread of an
ambiguous character (O/0, I/1, S/5, B/8) is repaired only when exactly one repair fits the pattern, and
an ID that still does not fit gets a ``member_id.format`` warning.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from extractors import decode
from extractors import nlp as N
from extractors.base import RawField, RawFlag

P = "insurance.primary."
CARD_KEYS: tuple[str, ...] = tuple(P + k for k in (
    "payer_name", "member_id", "group_number", "subscriber_name", "subscriber_date_of_birth", "rx_bin",
    "rx_pcn", "rx_group", "payer_id", "plan_type", "copay_primary_care", "copay_specialist",
    "copay_urgent_care", "copay_emergency"))
# What the reader says about the card itself, beside its values: which side(s) of the card the document
# shows (front | back | both) and the coverage the card says it is ("secondary" when it prints so, else
# blank). Never part of a patient's record.
SIDE_KEY = "card.side"
RANK_KEY = "card.rank"
CARD_META_KEYS: tuple[str, ...] = (SIDE_KEY, RANK_KEY)
# The values a front identifies a card by: a document with none of them is not a front.
FRONT_KEYS: tuple[str, ...] = (P + "member_id", P + "subscriber_name", P + "group_number",
                               P + "subscriber_date_of_birth")
# What a back may carry; the identifying fields it lacks are not asked of it.
BACK_KEYS: tuple[str, ...] = tuple(k for k in CARD_KEYS if k not in FRONT_KEYS)

# --------------------------------------------------------------------------------------------------
# Label wordings
# --------------------------------------------------------------------------------------------------

_ID = {"LOWER": {"IN": ["id", "1d", "ld", "i.d.", "i.d", "lD".lower()]}}
_NUM = {"LOWER": {"IN": ["number", "no", "no.", "num", "nbr", "#"]}}
_DOT = {"ORTH": {"IN": [".", "#"]}, "OP": "?"}


def _w(*words: str) -> list[dict[str, Any]]:
    """A pattern of words matched without case; words of six letters or more also match with one OCR
    slip ('Membar', 'Identifcation')."""
    out: list[dict[str, Any]] = []
    for w in words:
        if w == "<ID>":
            out.append(_ID)
        elif w == "<NUM>":
            out.append(_NUM)
        elif len(w) >= 6:
            out.append({"LOWER": {"FUZZY1": w}})
        else:
            out.append({"LOWER": w})
    return out


def _FZ(word: str) -> dict[str, Any]:  # noqa: N802 - reads like a token pattern
    return {"LOWER": {"FUZZY1": word}}


LABELS: dict[str, list[list[dict[str, Any]]]] = {
    "MEMBER_ID": [
        _w("member", "<ID>"), _w("member", "<NUM>"), _w("<ID>", "<NUM>"), _w("<ID>", "#"), _w("<ID>"),
        _w("subscriber", "<ID>"), _w("subscriber", "<NUM>"), _w("subscriber", "#"),
        _w("identification", "<NUM>"), _w("identification"), _w("member", "id", "<NUM>"),
        _w("medicare", "<NUM>"), _w("medicare", "<ID>"), _w("medicaid", "<ID>"), _w("medicaid", "<NUM>"),
        _w("recipient", "<ID>"), _w("recipient", "<ID>", "<NUM>"), _w("beneficiary", "<ID>"),
        _w("policy", "<NUM>"), _w("policy", "<ID>"), _w("insured", "<ID>"), _w("enrollee", "<ID>"),
        _w("dod", "benefits", "<NUM>"), _w("dbn"),
    ],
    "GROUP": [_w("group"), _w("grp"), _w("group", "<NUM>"), _w("grp", "<NUM>"), _w("group", "<ID>"),
              _w("employer", "group"), _w("grp", "<ID>")],
    "NAME": [_w("member"), _w("member", "name"), _w("name"), _w("subscriber"), _w("subscriber", "name"),
             _w("cardholder"), _w("card", "holder"), _w("insured"), _w("insured", "name"),
             _w("recipient", "name"), _w("beneficiary"), _w("beneficiary", "name"), _w("enrollee"),
             _w("enrollee", "name"), _w("patient", "name")],
    "DOB": [_w("dob"), _w("d.o.b."), _w("d.o.b"), _w("date", "of", "birth"), _w("birth", "date"),
            _w("birthdate")],
    # "Rx" is often set in a narrow face that OCR reads as "RXx" or "Rk": one slip allowed.
    "RX_BIN": [[_FZ("rxbin")], _w("rx", "bin"), _w("bin"), [_FZ("rxbin"), {"ORTH": "#"}], _w("bin", "#")],
    "RX_PCN": [[_FZ("rxpcn")], _w("rx", "pcn"), _w("pcn")],
    "RX_GROUP": [[_FZ("rxgrp")], _w("rx", "grp"), _w("rx", "group"), [_FZ("rxgroup")], _w("rx", "grp", "#")],
    "PAYER_ID": [_w("payer", "<ID>"), _w("payor", "<ID>"), _w("edi", "payer", "<ID>"), _w("edi", "payor", "<ID>"),
                 _w("edi", "#"), _w("claims", "payer", "<ID>"), _w("payer", "<NUM>")],
    "PLAN": [_w("plan"), _w("plan", "type"), _w("plan", "name"), _w("product"), _w("network"),
             _w("coverage", "type")],
    "COPAY_PCP": [_w("pcp"), _w("office", "visit"), _w("primary", "care"), _w("pcp", "copay"), _w("ov"),
                  _w("primary", "care", "copay"), _w("pcp", "visit")],
    "COPAY_SPEC": [_w("specialist"), _w("spec"), _w("specialist", "copay"), _w("spc"), _w("specialty")],
    "COPAY_UC": [_w("urgent", "care"), _w("uc"), _w("urgent"), _w("urgent", "care", "copay")],
    "COPAY_ER": [_w("er"), _w("emergency", "room"), _w("emergency"), _w("er", "copay"), _w("emerg"),
                 _w("emergency", "room", "copay")],
    # Label-like phrases that are not fields: they end a value and are never taken for one.
    "OTHER": [_w("group", "name"), _w("case", "<NUM>"),
              _w("issue", "date"), _w("effective", "date"), _w("effective"), _w("coverage", "starts"),
              _w("dependent"), _w("dependents"), _w("entitled", "to"), _w("hospital"),
              _w("medical"), _w("copay"), _w("copays"), _w("deductible"), _w("coinsurance"), _w("issuer"),
              _w("phone"), _w("www"), _w("rx")],
    # What the back of a card prints (where claims go, whom to call, the fine print): not fields either,
    # but they tell a back from a front (see :func:`card_side`).
    "BACK": [_w("member", "services"), _w("member", "services", "<NUM>"), _w("customer", "service"),
             _w("customer", "services"), _w("send", "claims"), _w("submit", "claims"), _w("mail", "claims"),
             _w("claims", "address"), _w("claims", "to"), _w("pharmacist"), _w("pharmacists"), _w("providers"),
             _w("provider", "services"), _w("does", "not", "guarantee"), _w("not", "a", "guarantee"),
             _w("nearest", "hospital"), _w("if", "found")],
    # The card says which coverage it is ("Secondary", "Secondary coverage"): coordination of benefits.
    "SECONDARY": [_w("secondary"), _w("secondary", "coverage"), _w("secondary", "insurance"),
                  _w("secondary", "payer")],
}

FIELD_OF_LABEL = {"MEMBER_ID": "member_id", "GROUP": "group_number", "NAME": "subscriber_name",
                  "DOB": "subscriber_date_of_birth", "RX_BIN": "rx_bin", "RX_PCN": "rx_pcn",
                  "RX_GROUP": "rx_group", "PAYER_ID": "payer_id", "COPAY_PCP": "copay_primary_care",
                  "COPAY_SPEC": "copay_specialist", "COPAY_UC": "copay_urgent_care", "COPAY_ER": "copay_emergency"}
# The words that make a page look like an insurance card, for classification.
CARD_VOCABULARY = frozenset({"MEMBER_ID", "GROUP", "RX_BIN", "RX_PCN", "RX_GROUP", "PAYER_ID", "COPAY_PCP",
                             "COPAY_SPEC", "COPAY_ER", "COPAY_UC", "PLAN"})

PLAN_TYPES: dict[str, list[tuple[str, ...]]] = {
    "PPO": [("ppo",), ("preferred", "provider", "organization")],
    "HMO": [("hmo",), ("health", "maintenance", "organization")],
    "EPO": [("epo",), ("exclusive", "provider", "organization")],
    "POS": [("pos",), ("point", "of", "service")],
    "HDHP": [("hdhp",), ("high", "deductible", "health", "plan")],
    "PFFS": [("pffs",), ("private", "fee", "for", "service")],
    "SNP": [("snp",), ("d-snp",), ("special", "needs", "plan")],
}

# --------------------------------------------------------------------------------------------------
# Value shapes
# --------------------------------------------------------------------------------------------------

_ALNUM = re.compile(r"^[A-Za-z0-9]+$")
_DATE = re.compile(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{2}|\d{4})$")
_MONEY = re.compile(r"^\$?(\d{1,4})(?:\.(\d{2}))?$")
_TO_DIGIT = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1",
                           "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "G": "6"})
_AMBIGUOUS = {"0": "OD", "O": "0", "D": "0", "1": "IL", "I": "1", "L": "1", "5": "S", "S": "5", "8": "B",
              "B": "8", "2": "Z", "Z": "2", "6": "G", "G": "6"}


def _id_run(tokens: Sequence[Token], max_len: int) -> list[Token]:
    """Tokens that together spell one identifier: letters and digits, joined across the spaces and
    dashes cards print inside IDs, as long as the whole stays plausible."""
    out: list[Token] = []
    length = 0
    for t in tokens:
        if t.text in ("-", "–"):
            if out:
                continue
            break
        core = t.text.strip("-–")
        if not _ALNUM.match(core) or (t.text != core and not out and t.text.startswith(("-", "–"))):
            break  # '-GA8' continues an ID ('3AG7 -GA8'), it never starts one
        if length + len(core) > max_len:
            break
        out.append(t)
        length += len(core)
    return out


def _joined(tokens: Sequence[Token]) -> str:
    return "".join(t.text.strip("-–") for t in tokens if t.text not in ("-", "–"))


def clean_id(text: str) -> str:
    """An ID as printed, less OCR's doubled capitals: cards print IDs in capitals, so a run of one
    letter in mixed case ('wWw883...', 'uU363...') is one letter read twice."""
    return re.sub(r"([A-Za-z])\1+", lambda m: m.group(0) if m.group(0).isupper() else m.group(1).upper(),
                  text, flags=re.IGNORECASE)


def shape_member_id(tokens: Sequence[Token]) -> list[Token] | None:
    run = _id_run(tokens, 20)
    text = _joined(run)
    if 6 <= len(text) <= 20 and sum(c.isdigit() for c in text) >= 4:
        return run
    return None


def shape_group(tokens: Sequence[Token]) -> list[Token] | None:
    run = _id_run(tokens, 15)
    text = _joined(run)
    if 3 <= len(text) <= 15 and any(c.isdigit() for c in text):
        return run
    return None


def shape_short_code(tokens: Sequence[Token]) -> list[Token] | None:
    """Rx PCN, Rx group: one printed code."""
    if tokens and _ALNUM.match(tokens[0].text) and 1 <= len(tokens[0].text) <= 15:
        return [tokens[0]]
    return None


def shape_bin(tokens: Sequence[Token]) -> list[Token] | None:
    if tokens and re.fullmatch(r"\d{6}", tokens[0].text.translate(_TO_DIGIT)):
        return [tokens[0]]
    return None


def shape_payer_id(tokens: Sequence[Token]) -> list[Token] | None:
    if tokens and _ALNUM.match(tokens[0].text) and 4 <= len(tokens[0].text) <= 10 \
            and sum(c.isdigit() for c in tokens[0].text) >= 2:
        return [tokens[0]]
    return None


_NAME_TOKEN = re.compile(r"^[^\W\d_]+(?:['’.\-][^\W\d_]*)*\.?$")


def shape_name(tokens: Sequence[Token], stop_words: frozenset[str] = frozenset()) -> list[Token] | None:
    out: list[Token] = []
    words = 0
    for t in tokens:
        if t.text in ("-", "'", "’") and out:
            out.append(t)
            continue
        if not _NAME_TOKEN.match(t.text) or t.lower_ in stop_words:
            break
        out.append(t)
        words += 1
        if words >= 5:
            break
    while out and out[-1].text in ("-", "'", "’"):
        out.pop()
    named = [t for t in out if _NAME_TOKEN.match(t.text)]
    if sum(1 for t in named if len(t.text.rstrip(".")) >= 2) >= 2:
        return out
    return None


def shape_date(tokens: Sequence[Token]) -> list[Token] | None:
    run: list[Token] = []
    for t in tokens:
        if run and t.i != run[-1].i + 1:
            break
        run.append(t)
        if _DATE.match("".join(x.text for x in run)):
            return run
        if len(run) >= 5 or run[-1].whitespace_:
            break
    return None


def shape_money(tokens: Sequence[Token]) -> list[Token] | None:
    if not tokens:
        return None
    if tokens[0].text == "$" and len(tokens) > 1 and _MONEY.match(tokens[1].text) and tokens[1].i == tokens[0].i + 1:
        return [tokens[0], tokens[1]]
    if tokens[0].text.startswith("$") and _MONEY.match(tokens[0].text):
        return [tokens[0]]
    return None


def money_text(tokens: Sequence[Token]) -> str:
    m = _MONEY.match("".join(t.text for t in tokens))
    assert m is not None
    return f"${int(m.group(1))}" + (f".{m.group(2)}" if m.group(2) and m.group(2) != "00" else "")


# --------------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------------

LABEL_KEY = "card_labels"


def labels_of(doc: Doc) -> list[Span]:
    """Label spans within one line, overlaps resolved in favour of the longer wording ('Member Services'
    over 'Member'). A label never runs across lines: 'EPO Plan' above 'Name:' is not 'Plan Name'."""
    return N.one_line_spans(doc, LABEL_KEY)


@Language.factory("card_fields")
def make_card_fields(nlp: Language, name: str) -> CardFields:
    return CardFields()


class CardFields:
    """Label -> value by position: right of the label first, else below it; the first value of the
    right shape wins, front of the card before back."""

    SHAPES = {
        "MEMBER_ID": shape_member_id, "GROUP": shape_group, "DOB": shape_date, "RX_BIN": shape_bin,
        "RX_PCN": shape_short_code, "RX_GROUP": shape_short_code, "PAYER_ID": shape_payer_id,
        "COPAY_PCP": shape_money, "COPAY_SPEC": shape_money, "COPAY_UC": shape_money, "COPAY_ER": shape_money,
    }

    def __call__(self, doc: Doc) -> Doc:
        labels = labels_of(doc)
        stop = {t.i for s in labels for t in s}
        label_words = frozenset(t.lower_ for s in labels for t in s)
        fields: dict[str, N.FieldHit] = doc._.fields
        for span in sorted(labels, key=lambda s: (s[0]._.page, s.start)):
            kind = span.label_
            if kind not in FIELD_OF_LABEL and kind != "PLAN":
                continue
            key = P + FIELD_OF_LABEL.get(kind, "plan_type")
            if key in fields:
                continue
            for where, cand in (("right of", N.right_of(span, stop)), ("below", N.below(span, stop))):
                if not cand:
                    continue
                if kind == "PLAN":
                    plan = _plan_in(doc, cand)
                    if plan:
                        fields[key] = N.hit(cand, f"{where} '{span.text}'", plan)
                        break
                    continue
                if kind == "NAME":
                    got = shape_name(cand, label_words | _NOT_NAMES)
                else:
                    got = self.SHAPES[kind](cand)
                if not got:
                    continue
                text = None
                if kind.startswith("COPAY"):
                    text = money_text(got)
                elif kind in ("MEMBER_ID", "GROUP"):
                    text = clean_id(doc[got[0].i:got[-1].i + 1].text)  # as printed, dashes included
                elif kind in ("RX_PCN", "RX_GROUP", "PAYER_ID"):
                    text = clean_id(got[0].text)
                fields[key] = N.hit(got, f"{where} '{span.text}'", text)
                break
        if P + "plan_type" not in fields:
            plans = [e for e in doc.ents if e.label_ == "PLAN_TYPE"]
            if plans:
                fields[P + "plan_type"] = N.hit(list(plans[0]), "plan type printed on the card", plans[0].ent_id_)
        return doc


_NOT_NAMES = frozenset({"plan", "group", "id", "member", "services", "health", "insurance", "card", "copay",
                        "pharmacy", "benefits", "dental", "vision", "medical", "hospital", "part"})


def _plan_in(doc: Doc, tokens: Sequence[Token]) -> str | None:
    idx = {t.i for t in tokens}
    for e in doc.ents:
        if e.label_ == "PLAN_TYPE" and e.start in idx:
            return e.ent_id_
    return None


@Language.factory("card_payer", default_config={"payers": str(N.DEFAULT_PAYERS)})
def make_card_payer(nlp: Language, name: str, payers: str) -> CardPayer:
    return CardPayer(N.load_gazetteer(Path(payers)))


class CardPayer:
    """The payer: the most prominent payer name on the card. A PBM's name or a payer name that is part of
    the member's name never counts. When no spelling matches exactly (OCR damage, words run together), a
    line's words are compared with every spelling within a small edit distance."""

    def __init__(self, gaz: N.Gazetteer) -> None:
        self.gaz = gaz
        self.squashed = [(N.squash(s), e) for e in gaz.entries for s in e.spellings if len(N.squash(s)) >= 4]

    def __call__(self, doc: Doc) -> Doc:
        fields: dict[str, N.FieldHit] = doc._.fields
        taken = set(fields[P + "subscriber_name"].tokens) if P + "subscriber_name" in fields else set()
        unit = N.text_height(doc)
        first_page = min((t._.page for t in doc), default=1)
        cands: list[tuple[tuple[float, ...], N.PayerEntry, list[Token], str]] = []
        for e in doc.ents:
            if e.label_ != "PAYER" or any(t.i in taken for t in e):
                continue
            entry = self.gaz.by_name.get(e.ent_id_)
            if entry is None or entry.kind != "payer":
                continue
            toks = list(e)
            h = max(N.height(t) for t in toks) / unit
            score = (float(toks[0]._.page == first_page), round(h, 1), float(len(e.text)), -toks[0]._.y0)
            cands.append((score, entry, toks, "payer name on the card"))
        if not cands:
            cands = self._fuzzy(doc, taken, unit, first_page)
        if not cands and P + "payer_id" in fields:
            # No name readable (a logo, a short name lost in a band), but an EDI payer ID printed on the
            # card names exactly one payer of the gazetteer.
            pid = fields[P + "payer_id"].text.upper()
            owners = [e for e in self.gaz.entries if e.payer_id == pid and e.kind == "payer"]
            if len(owners) == 1:
                toks = [doc[i] for i in fields[P + "payer_id"].tokens]
                fields[P + "payer_name"] = N.hit(toks, "payer ID printed on the card", owners[0].name)
                doc._.notes.append("payer named by its payer ID")
                return doc
        if cands:
            cands.sort(key=lambda c: c[0], reverse=True)
            _score, entry, toks, how = cands[0]
            # A short spelling ('BlueCross BlueShield') gives way to a longer one that begins with it
            # elsewhere on the card ('... BlueShield of Texas'): the longer one says which plan.
            short = N.squash("".join(t.text for t in toks))
            longer = [c for c in cands[1:] if c[1] is not entry
                      and N.squash("".join(t.text for t in c[2])).startswith(short)
                      and len(N.squash("".join(t.text for t in c[2]))) > len(short)]
            if longer:
                _score, entry, toks, how = longer[0]
            fields[P + "payer_name"] = N.hit(toks, how, entry.name)
            doc._.notes.append(f"payer chosen from {len(cands)} candidate(s)")
        return doc

    def _fuzzy(self, doc: Doc, taken: set[int], unit: float, first_page: int) -> list[Any]:
        lines: dict[int, list[Token]] = {}
        for t in doc:
            if t.i not in taken and not t.is_punct:
                lines.setdefault(t._.line, []).append(t)
        out = []
        for toks in lines.values():
            for a in range(len(toks)):
                for b in range(a + 1, min(len(toks), a + 6) + 1):
                    window = toks[a:b]
                    text = N.squash("".join(t.text for t in window))
                    if len(text) < 4:
                        continue
                    for spelled, entry in self.squashed:
                        if entry.kind != "payer":
                            continue
                        limit = max(1, len(spelled) // 7)  # one slip per 7 letters
                        d = N.levenshtein(text, spelled, limit)
                        if d <= limit:
                            h = max(N.height(t) for t in window) / unit
                            score = (float(window[0]._.page == first_page), round(h, 1), float(len(spelled) - 3 * d),
                                     -window[0]._.y0)
                            out.append((score, entry, window, "payer name on the card (approximate spelling)"))
        return out


def _card_patterns(nlp: Language) -> list[dict[str, Any]]:
    pats: list[dict[str, Any]] = []
    for label, plist in LABELS.items():
        for p in plist:
            pats.append({"label": label, "pattern": p})
    return pats


def _entity_patterns(nlp: Language, gaz: N.Gazetteer) -> list[dict[str, Any]]:
    pats = N.payer_patterns(nlp, gaz)
    for acronym, forms in PLAN_TYPES.items():
        for words in forms:
            pats.append({"label": "PLAN_TYPE", "pattern": [{"LOWER": w} for w in words], "id": acronym})
    return pats


BUILDS = N.BUILDS  # BUILDS["card"]: card pipelines built in this process


@N.built_once("card")
def card_nlp(payers: Path, model: str | None) -> Language:
    """The card pipeline, built once per process (per payer list and spaCy model)."""
    gaz = N.load_gazetteer(Path(payers))
    nlp = N.rule_pipeline(model, spans=("card_labels", LABEL_KEY), span_patterns=_card_patterns,
                          entities="card_entities", entity_patterns=lambda n: _entity_patterns(n, gaz),
                          match_lower=True)
    nlp.add_pipe("card_fields")
    nlp.add_pipe("card_payer", config={"payers": str(payers)})
    return nlp


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass
class CardReading:
    """What a card says, as raw fields and flags, plus the evidence that it is a card at all."""

    fields: dict[str, RawField] = field(default_factory=dict)
    flags: list[RawFlag] = field(default_factory=list)
    vocabulary: set[str] = field(default_factory=set)  # card label kinds seen
    payer: str | None = None
    how: dict[str, str] = field(default_factory=dict)  # key -> how it was found (label wording, never values)
    side: str = "front"  # front | back | both (see :func:`card_side`)
    rank: str | None = None  # "secondary" when the card prints so
    back_cues: int = 0  # distinct back-of-card wordings seen

    @property
    def present(self) -> set[str]:
        """The keys this card is held to: a back alone names no member, so nobody is asked for one."""
        keys = set(BACK_KEYS if self.side == "back" else CARD_KEYS)
        return keys | set(CARD_META_KEYS)


def card_vocabulary(doc: Doc) -> set[str]:
    kinds = {s.label_ for s in labels_of(doc)} & CARD_VOCABULARY
    if any(e.label_ == "PAYER" for e in doc.ents):
        kinds.add("PAYER")
    return kinds


def repair_member_id(value: str, pattern: re.Pattern[str], max_changes: int = 2) -> str | None:
    """The one reading of ``value`` that fits ``pattern`` after changing at most ``max_changes``
    characters OCR confuses (O/0, I/1, S/5, B/8, Z/2, G/6); None when none or several fit."""
    if pattern.fullmatch(value):
        return value
    positions = [i for i, c in enumerate(value) if c in _AMBIGUOUS]
    found: set[str] = set()
    for n in range(1, max_changes + 1):
        for combo in itertools.combinations(positions, n):
            for subs in itertools.product(*(_AMBIGUOUS[value[i]] for i in combo)):
                chars = list(value)
                for i, s in zip(combo, subs, strict=True):
                    chars[i] = s
                cand = "".join(chars)
                if pattern.fullmatch(cand):
                    found.add(cand)
        if found:
            break
    return found.pop() if len(found) == 1 else None


def card_side(doc: Doc) -> tuple[str, int]:
    """Which side(s) of a card the words show, and how many back-of-card wordings were seen.

    A front names its member (member ID, name, group, birth date); a back prints where claims go, whom
    to call and the fine print. Two different back wordings without any member field: the back alone.
    A front that also carries two of them: both sides (a flatbed copy, a two-page file). One back wording
    on a front (a member-services phone under the name) is still a front."""
    fields: dict[str, N.FieldHit] = doc._.fields
    cues = {N.squash(s.text) for s in labels_of(doc) if s.label_ == "BACK"}
    front = any(k in fields for k in FRONT_KEYS)
    if not front:
        return ("back" if len(cues) >= 2 else "front"), len(cues)
    return ("both" if len(cues) >= 2 else "front"), len(cues)


def read_card_words(words: Sequence[N.WordBox], payers: Path = N.DEFAULT_PAYERS) -> CardReading:
    """Fields of an insurance card from its words (front and back may be two pages)."""
    nlp = card_nlp(payers)
    gaz = N.load_gazetteer(payers)
    doc = nlp(N.make_doc(nlp, words))
    out = CardReading(vocabulary=card_vocabulary(doc))
    out.side, out.back_cues = card_side(doc)
    if any(s.label_ == "SECONDARY" for s in labels_of(doc)):
        out.rank = "secondary"
    hits: dict[str, N.FieldHit] = doc._.fields
    for key, h in hits.items():
        text = h.text
        if key in (P + "rx_bin",):
            text = text.translate(_TO_DIGIT)
        out.fields[key] = RawField(text, round(h.conf, 3), h.page)
        out.how[key] = h.how
    payer = out.fields.get(P + "payer_name")
    out.payer = payer.raw if payer else None
    entry = gaz.by_name.get(out.payer) if out.payer else None
    pid = out.fields.get(P + "payer_id")
    if entry is not None and entry.payer_id and pid is not None and pid.raw and pid.raw != entry.payer_id \
            and N.levenshtein(pid.raw.upper(), entry.payer_id, 1) <= 1:
        # One character off this payer's published ID is a misread of it, not another ID.
        out.fields[P + "payer_id"] = RawField(entry.payer_id, round(min(pid.confidence, 0.85), 3), pid.page)
        out.how[P + "payer_id"] += "; corrected to the payer's published ID"
    mid = out.fields.get(P + "member_id")
    if entry is not None and entry.member_id is not None and mid is not None and mid.raw:
        canonical = re.sub(r"[\s\-–]", "", mid.raw).upper()
        fixed = repair_member_id(canonical, entry.member_id)
        if fixed is not None and fixed != canonical:
            out.fields[P + "member_id"] = RawField(fixed, round(min(mid.confidence, 0.85), 3), mid.page)
            out.how[P + "member_id"] += "; repaired to fit the payer's format"
        elif fixed is None:
            out.flags.append(RawFlag("member_id.format", "warning",
                                     "Member ID does not have the usual format of this payer's IDs; please check "
                                     "it against the card", P + "member_id"))
    ph = hits.get(P + "payer_name")
    if entry is not None and ph is not None and ph.tokens \
            and short_payer_name(" ".join(doc[i].text for i in ph.tokens), entry.name):
        out.flags.append(RawFlag("payer.short_name", "warning",
                                 "the card prints only a short payer name that several plans go by; please "
                                 "confirm the plan", P + "payer_name"))
    name = out.fields.get(P + "subscriber_name")
    if name is not None and name.raw:
        doubt = name_doubt(name.raw)
        if doubt is not None:
            fixed, why = doubt
            out.fields[P + "subscriber_name"] = RawField(fixed, round(min(name.confidence, 0.6), 3), name.page)
            out.flags.append(RawFlag("low_confidence", "warning", f"{why}; please check the name against the card",
                                     P + "subscriber_name"))
    for key in CARD_KEYS:
        out.fields.setdefault(key, RawField(None, 1.0, None))
    out.fields[SIDE_KEY] = RawField(out.side, 1.0, None)
    out.fields[RANK_KEY] = RawField(out.rank, 1.0, None)
    return out


# Words a payer's full name may carry that do not change which plan it is (Oscar is Oscar Health).
_PLAIN_WORDS = frozenset({"health", "healthcare", "care", "plan", "plans", "insurance", "company", "inc", "co",
                          "corp", "group", "solutions", "services", "the"})


def short_payer_name(printed: str, name: str) -> bool:
    """Does the card print only the first words of its payer's name, leaving out words that say which plan
    it is? "Anthem" alone is several plans (Blue Cross in one state, Blue Cross Blue Shield in others); the
    gazetteer's longer name is then a guess a person confirms. "Oscar" for Oscar Health is not."""
    short = N.squash(printed)
    words = name.split()
    joined = ""
    for i, w in enumerate(words):
        joined += N.squash(w)
        if joined == short:
            rest = {N.squash(x) for x in words[i + 1:]} - {""}
            return bool(rest - _PLAIN_WORDS)
        if not short.startswith(joined):
            return False
    return False


_NAME_PARTICLES = frozenset({"de", "del", "della", "di", "da", "van", "von", "der", "den", "la", "le", "du",
                             "dos", "das", "y", "bin", "ibn", "al", "el"})


def name_doubt(name: str) -> tuple[str, str] | None:
    """A printed name that OCR has visibly damaged, and why: an accent mark doubled or echoed (Anaïs read
    as Anaiïs), or a word that starts in lower case among capitalised ones (a Z read as z). Returns the
    likeliest reading and the reason, or None."""
    fixed = decode.stray_mark(name)
    if fixed is not None:
        return fixed, "an accent mark in the name looks doubled or misplaced"
    words = [w for w in name.replace("-", " ").split() if w[:1].isalpha()]
    if any(w[:1].isupper() for w in words) and any(
            w[:1].islower() and w.lower() not in _NAME_PARTICLES for w in words):
        return name, "a word of the name starts with a small letter"
    return None

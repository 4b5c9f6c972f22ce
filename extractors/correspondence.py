"""Read a letter: what kind it is, whom it is about, who sent it, and its dates and reference numbers.

Letters reach the front desk from other practices (referrals, records requests), insurers (claim denials,
prior-authorization decisions, explanations of benefits) and everyone else. None follows a template, so a
blank English spaCy pipeline over positioned tokens (:mod:`extractors.nlp`) reads them by rule:

1. ``letter_cues`` (SpanRuler): the cues letters put before what matters: ``Patient:``, ``Re:``,
   ``DOB``, ``Date(s) of service``, ``Claim #``, ``Authorization number``; and a letter's frame
   (``Dear``, ``Sincerely``).
2. ``letter_entities`` (EntityRuler): dates in the ways letters write them, payer names from the
   gazetteer, organisation names (capitalised words ending in Clinic, Hospital, Associates...).
3. ``letter_type`` (own component): weighted cue phrases per type; the type with the highest score wins
   when it is clear enough, else ``other``. The reason lists the phrases that decided it.
4. ``letter_fields`` (own component): values right of their cues (or under them, in tables), the patient
   from ``Patient:``/``Re:`` lines or from running text ("our patient, Jane Doe (DOB ...)"), the sender
   from the letterhead.

A statistical model (``en_core_web_sm`` or similar) is optional: when one is installed and named in the
settings, its PERSON and ORG entities are used only where the rules found nothing. Tests run the rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span, Token

from extractors import nlp as N
from extractors.base import RawField, RawFlag

C = "correspondence."
LETTER_KEYS: tuple[str, ...] = tuple(C + k for k in (
    "type", "sender", "letter_date", "patient_name", "patient_date_of_birth", "member_id", "date_of_service",
    "dates_of_service", "reference", "claim_number", "authorization_number"))
LETTER_TYPES = ("referral", "records_request", "insurance_denial", "prior_authorization",
                "explanation_of_benefits", "other")

# --------------------------------------------------------------------------------------------------
# Cues
# --------------------------------------------------------------------------------------------------

_ID = {"LOWER": {"IN": ["id", "1d", "ld", "i.d."]}}
_NUM = {"LOWER": {"IN": ["number", "no", "no.", "num", "nbr", "#"]}}
_HASH = {"ORTH": {"IN": ["#", "no", "No", "No."]}}


def _w(*words: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for w in words:
        if w == "<ID>":
            out.append(_ID)
        elif w == "<NUM>":
            out.append(_NUM)
        elif w == "<S?>":
            out.append({"LOWER": {"IN": ["(s)", "s"]}, "OP": "?"})
        elif len(w) >= 9:
            out.append({"LOWER": {"FUZZY1": w}})
        else:
            out.append({"LOWER": w})
    return out


CUES: dict[str, list[list[dict[str, Any]]]] = {
    "PATIENT": [_w("patient"), _w("patient", "name"), _w("re"), _w("regarding"), _w("member"), _w("member", "name"),
                _w("patient", "'s", "name"), _w("name", "of", "patient"), _w("subscriber", "name"), _w("insured"),
                _w("beneficiary"), _w("re", ":", "patient"), _w("subject")],
    "DOB": [_w("dob"), _w("d.o.b."), _w("d.o.b"), _w("date", "of", "birth"), _w("birth", "date"), _w("birthdate"),
            _w("born")],
    "DOS": [_w("date", "<S?>", "of", "service"), _w("dates", "of", "service"), _w("service", "date", "<S?>"),
            _w("service", "dates"), _w("dos"), _w("date", "<S?>", "of", "visit"), _w("visit", "date"),
            _w("dates", "of", "visit")],
    "CLAIM": [_w("claim", "<NUM>"), _w("claim", "<ID>"), _w("claim", "#"), _w("icn"), _w("claim", "reference")],
    "REF": [_w("reference", "<NUM>"), _w("ref", "<NUM>"), _w("ref", "."), _w("our", "reference"), _w("case", "<NUM>"),
            _w("request", "<NUM>"), _w("tracking", "<NUM>"), _w("file", "<NUM>"), _w("your", "reference"),
            _w("control", "<NUM>"), _w("appeal", "<NUM>"), _w("reference"), _w("ref")],
    "AUTH": [_w("authorization", "<NUM>"), _w("auth", "<NUM>"), _w("authorization", "#"), _w("auth", "#"),
             _w("certification", "<NUM>"), _w("approval", "<NUM>"), _w("prior", "authorization", "<NUM>"),
             _w("pa", "<NUM>"), _w("authorization", "<ID>"), _w("precertification", "<NUM>"),
             _w("pre-certification", "<NUM>")],
    "MEMBER_ID": [_w("member", "<ID>"), _w("member", "<NUM>"), _w("subscriber", "<ID>"), _w("<ID>", "<NUM>"),
                  _w("identification", "<NUM>"), _w("policy", "<NUM>"), _w("medicare", "<NUM>"), _w("member", "id", "<NUM>")],
    # "Date" alone is a cue only with its colon: a table's "Date" column header is not the letter's date.
    "DATE_CUE": [[{"LOWER": "date"}, {"ORTH": ":"}], _w("letter", "date"), _w("date", "of", "letter"),
                 _w("notice", "date"), _w("date", "sent")],
    "FROM": [_w("from")],
    "SALUTATION": [_w("dear"), _w("to", "whom", "it", "may", "concern")],
    # A closing only counts on a short line of its own (see closing_lines): "Thank you for seeing..." in
    # the body is not one.
    "CLOSING": [_w("sincerely"), _w("regards"), _w("best", "regards"), _w("respectfully"), _w("yours", "truly"),
                _w("kind", "regards"), _w("cordially"), _w("thank", "you"), _w("with", "thanks"), _w("thanks")],
    # Cue-like words that are not fields: they end a value.
    "OTHER": [_w("provider"), _w("physician"), _w("group", "<NUM>"), _w("npi"), _w("phone"), _w("fax"),
              _w("tel"), _w("address"), _w("plan"), _w("diagnosis"), _w("procedure"), _w("amount"), _w("status"),
              _w("service"), _w("services"), _w("requested", "service"), _w("decision"), _w("units"),
              _w("cpt"), _w("icd-10"), _w("icd"), _w("to"), _w("cc"), _w("attn"), _w("attention")],
}

# Phrases that speak for a letter type, with weights. Lower case; matched on tokens, so "pre-authorization"
# and "preauthorization" are both listed.
TYPE_CUES: dict[str, list[tuple[str, float]]] = {
    "referral": [("referral", 3), ("refer", 2), ("referring", 2.5), ("referred", 2.5), ("evaluate and treat", 3),
                 ("evaluation and treatment", 3), ("consultation", 2), ("consult", 1.5), ("please see", 1.5),
                 ("reason for referral", 4), ("referring physician", 3), ("referring provider", 3),
                 ("for evaluation", 2), ("thank you for seeing", 3), ("your opinion", 2), ("your evaluation", 2),
                 ("kindly see", 2), ("would appreciate your", 1.5), ("assessment and management", 2),
                 ("in consultation", 2.5), ("see this patient", 2), ("agreeing to see", 2.5),
                 ("consultation note", 2), ("schedule an appointment", 1)],
    "records_request": [("medical records", 2.5), ("records request", 4), ("request for records", 4),
                        ("request for medical records", 5), ("copies of", 2), ("copy of", 1.5),
                        ("release of information", 3), ("authorization to release", 3),
                        ("authorization for release", 3), ("subpoena", 3), ("please forward", 1.5),
                        ("complete copy", 2.5), ("records", 1.5), ("chart notes", 2), ("office notes", 1.5),
                        ("send us", 1), ("please provide", 1), ("signed authorization", 2), ("itemized bill", 1.5),
                        ("records custodian", 3), ("custodian of records", 3)],
    "insurance_denial": [("denied", 2.5), ("denial", 3), ("not covered", 3), ("claim", 1.5), ("adverse", 1.5),
                         ("has been denied", 2), ("was denied", 2), ("claim number", 1.5), ("timely filing", 2),
                         ("reconsideration", 1.5),
                         ("unable to pay", 3), ("not payable", 3), ("claim was denied", 4), ("claim has been denied", 4),
                         ("claim denial", 4), ("denial reason", 3), ("reason code", 2), ("we cannot pay", 3),
                         ("cannot be paid", 3), ("not eligible for payment", 3), ("coverage was not", 2),
                         ("request a review", 1), ("appeal", 1), ("payment denied", 3), ("remark code", 2)],
    "prior_authorization": [("prior authorization", 4), ("pre-authorization", 4), ("preauthorization", 4),
                            ("precertification", 4), ("pre-certification", 4), ("prior approval", 3),
                            ("authorization request", 3), ("authorization number", 2.5), ("approved", 2),
                            ("approval", 1.5), ("authorized", 2), ("valid from", 2), ("valid through", 2),
                            ("requested service", 2), ("units", 1), ("authorization", 1.5), ("pre-service", 2),
                            ("medical necessity review", 1.5), ("certified", 1.5), ("approved for", 2)],
    "explanation_of_benefits": [("explanation of benefits", 6), ("this is not a bill", 5), ("amount billed", 3),
                                ("allowed amount", 3), ("plan paid", 3), ("patient responsibility", 2.5),
                                ("you may owe", 3), ("amount you owe", 3), ("deductible", 1), ("coinsurance", 1),
                                ("eob", 4), ("plan discount", 2), ("what your plan paid", 4), ("billed", 1),
                                ("summary of claims", 2), ("provider charged", 2)],
}
TYPE_MIN_SCORE = 4.0
_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’\-][^\W\d_]+)*\.?$")

# Organisation names: capitalised words ending in one of these.
ORG_TAILS = ("clinic", "hospital", "associates", "group", "center", "centre", "medical", "health", "healthcare",
             "insurance", "llp", "llc", "inc", "inc.", "pc", "p.c.", "practice", "partners", "orthopedics",
             "cardiology", "dermatology", "neurology", "oncology", "pediatrics", "radiology", "surgery",
             "physicians", "services", "institute", "university", "administration", "company", "law", "firm",
             "office", "department", "system", "network", "specialists", "care", "laboratories", "labs", "plan",
             "foundation", "attorneys", "solutions")

_DATE_RE = re.compile(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{2}|\d{4})$")
_MONTHS = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"), 1)}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})
_MONTHS["sept"] = 9


def _date_patterns() -> list[dict[str, Any]]:
    month = {"LOWER": {"IN": sorted(_MONTHS)}}
    return [
        {"label": "DATE", "pattern": [{"TEXT": {"REGEX": r"^\d{1,2}/\d{1,2}/(\d{2}|\d{4})$"}}]},
        {"label": "DATE", "pattern": [{"TEXT": {"REGEX": r"^\d{1,2}$"}}, {"ORTH": {"IN": ["-", "."]}},
                                      {"TEXT": {"REGEX": r"^\d{1,2}$"}}, {"ORTH": {"IN": ["-", "."]}},
                                      {"TEXT": {"REGEX": r"^(\d{2}|\d{4})$"}}]},
        {"label": "DATE", "pattern": [{"TEXT": {"REGEX": r"^\d{1,2}-\d{1,2}-(\d{2}|\d{4})$"}}]},
        {"label": "DATE", "pattern": [{"TEXT": {"REGEX": r"^\d{4}-\d{2}-\d{2}$"}}]},
        {"label": "DATE", "pattern": [month, {"ORTH": ".", "OP": "?"}, {"TEXT": {"REGEX": r"^\d{1,2}(st|nd|rd|th)?$"}},
                                      {"ORTH": ",", "OP": "?"}, {"TEXT": {"REGEX": r"^\d{4}$"}}]},
        {"label": "DATE", "pattern": [{"TEXT": {"REGEX": r"^\d{1,2}$"}}, month, {"ORTH": ",", "OP": "?"},
                                      {"TEXT": {"REGEX": r"^\d{4}$"}}]},
    ]


def parse_date_span(span: Span | Sequence[Token]) -> date | None:
    """A DATE entity's date (US order for numbers)."""
    toks = [t.text for t in span]
    text = "".join(toks)
    m = _DATE_RE.match(text)
    if m:
        mo, d, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if y < 100:
            y += 2000 if y <= date.today().year % 100 else 1900
        try:
            return date(y, mo, d)
        except ValueError:
            return None
    m2 = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", text)
    if m2:
        try:
            return date(int(m2.group(1)), int(m2.group(2)), int(m2.group(3)))
        except ValueError:
            return None
    words = [t.lower().rstrip(".") for t in toks if t not in (",", ".")]
    try:
        if words[0] in _MONTHS:
            return date(int(words[2]), _MONTHS[words[0]], int(re.sub(r"\D", "", words[1])))
        if words[1] in _MONTHS:
            return date(int(words[2]), _MONTHS[words[1]], int(words[0]))
    except (ValueError, IndexError):
        return None
    return None


# --------------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------------

CUE_KEY = "letter_cues"


def cues_of(doc: Doc) -> list[Span]:
    return N.one_line_spans(doc, CUE_KEY)


def _line_tokens(doc: Doc, line: int) -> list[Token]:
    return [t for t in doc if t._.line == line]


def closing_lines(doc: Doc) -> list[int]:
    """Lines that are a letter's closing: the closing words, a comma, nothing else."""
    out = []
    for s in cues_of(doc):
        if s.label_ != "CLOSING":
            continue
        line = _line_tokens(doc, s[0]._.line)
        words = [t for t in line if not t.is_punct]
        if line and line[0].i == s.start and len(words) <= len(s) + 1:
            out.append(s[0]._.line)
    return out


if not Token.has_extension("name_word"):
    # A capitalised word of letters (any script's capitals: 'Đức', 'Łucja'), apostrophes and hyphens.
    Token.set_extension("name_word", getter=lambda t: bool(t.text[:1].isupper() and _NAME_WORD.match(t.text)))
if not Doc.has_extension("letter_type"):
    Doc.set_extension("letter_type", default=None)
    Doc.set_extension("letter_type_reason", default=None)
    Doc.set_extension("letter_scores", default=None)


@Language.factory("letter_type")
def make_letter_type(nlp: Language, name: str) -> LetterType:
    return LetterType(nlp)


class LetterType:
    """Score each type by the cue phrases the letter uses (each phrase counted once, a phrase in the
    subject line or a title twice); the best type wins if its score is high enough and clear of the
    runner-up, else ``other``.

    Two tie-breakers that follow how the letters are written: a prior-authorization decision that
    refuses is still a prior-authorization letter (it is about a request, not a claim), and an
    explanation of benefits lists denied lines without being a denial letter."""

    def __init__(self, nlp: Language) -> None:
        self.matcher = Matcher(nlp.vocab)
        self.weights: dict[str, tuple[str, float]] = {}
        for kind, cues in TYPE_CUES.items():
            for phrase, weight in cues:
                # Tokenised as letters are: 'pre-authorization' is one token once hyphens are joined.
                words = [t.lower_ for t in N.join_hyphenated(nlp.make_doc(phrase))]
                key = f"{kind}|{phrase}"
                self.matcher.add(key, [[{"LOWER": w} for w in words]])
                self.weights[key] = (kind, weight)

    def __call__(self, doc: Doc) -> Doc:
        scores = dict.fromkeys(TYPE_CUES, 0.0)
        seen: dict[str, str] = {}
        prominent = _prominent_lines(doc)
        # The recipient's attention line ("Attn: Medical Records") says who reads the letter, not what
        # it is about.
        addressed = {s[0]._.line for s in doc.spans.get(CUE_KEY, []) if s.text.lower() in ("attn", "attention")}
        for match_id, start, _end in self.matcher(doc):
            if doc[start]._.line in addressed:
                continue
            key = doc.vocab.strings[match_id]
            kind, weight = self.weights[key]
            bonus = 2.0 if doc[start]._.line in prominent else 1.0
            prev = seen.get(key)
            if prev is None or bonus > 1.0 and prev == "body":
                scores[kind] += weight * bonus if prev is None else weight * (bonus - 1.0)
                seen[key] = "title" if bonus > 1.0 else "body"
        found = {k: sorted(p.split("|", 1)[1] for p in seen if p.startswith(k + "|")) for k in TYPE_CUES}
        if scores["prior_authorization"] >= 6 and scores["insurance_denial"] > scores["prior_authorization"] \
                and not any(p.startswith("claim") for p in found["insurance_denial"]):
            scores["insurance_denial"] = scores["prior_authorization"] - 0.5
        if scores["explanation_of_benefits"] >= 8:
            scores["insurance_denial"] = min(scores["insurance_denial"], scores["explanation_of_benefits"] - 0.5)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        (best, top), (_second, runner) = ranked[0], ranked[1]
        if top < TYPE_MIN_SCORE or top - runner < 1.0:
            doc._.letter_type = "other"
            doc._.letter_type_reason = (f"no type is clear (best {best} {top:g}, next {runner:g})"
                                        if top >= TYPE_MIN_SCORE else "too few type cues")
        else:
            doc._.letter_type = best
            doc._.letter_type_reason = f"{best}: " + ", ".join(f"'{p}'" for p in found[best][:6])
        doc._.letter_scores = scores
        return doc


def _prominent_lines(doc: Doc) -> set[int]:
    """Lines printed larger than the body text, or starting with Re:/Subject: — a letter's title."""
    unit = N.text_height(doc)
    out: set[int] = set()
    for t in doc:
        if N.height(t) > 1.3 * unit and t.is_alpha:
            out.add(t._.line)
    for s in doc.spans.get(CUE_KEY, []):
        if s.text.lower() in ("re", "subject", "regarding") and s.start == _line_start(doc, s[0]._.line):
            out.add(s[0]._.line)
    return out


def _line_start(doc: Doc, line: int) -> int:
    for t in doc:
        if t._.line == line:
            return t.i
    return -1


@Language.factory("letter_fields", default_config={"payers": str(N.DEFAULT_PAYERS)})
def make_letter_fields(nlp: Language, name: str, payers: str) -> LetterFields:
    return LetterFields(nlp, N.load_gazetteer(Path(payers)))


_TITLES = {"mr", "mrs", "ms", "miss", "mx", "mr.", "mrs.", "ms.", "mx."}
_DOCTOR = {"dr", "dr."}
_NOT_NAME = frozenset({"patient", "dob", "date", "birth", "member", "re", "the", "our", "your", "this", "claim",
                       "dear", "doctor", "name", "id", "subscriber", "insured", "request", "records", "referral",
                       "authorization", "prior", "denial", "notice", "explanation", "benefits", "of", "for", "and",
                       "summary", "medical", "services", "service", "plan", "number", "health", "account", "sex",
                       "male", "female", "gender", "age", "phone", "address"})


class LetterFields:
    """Values next to their cues, the patient, the sender."""

    def __init__(self, nlp: Language, gaz: N.Gazetteer) -> None:
        self.gaz = gaz
        self.prose = Matcher(nlp.vocab)
        name: dict[str, Any] = {"_": {"name_word": True}}
        initial: dict[str, Any] = {"TEXT": {"REGEX": r"^[A-Z]\.?$"}, "OP": "?"}
        person: list[dict[str, Any]] = [name, initial, name, {"_": {"name_word": True}, "OP": "?"}]
        self.prose.add("PATIENT_PROSE", [
            [{"LOWER": {"IN": ["patient", "member", "client"]}}, {"ORTH": ",", "OP": "?"}, *person],
            [{"LOWER": {"IN": ["patient", "member"]}}, {"LOWER": "named"}, *person],
            [{"LOWER": {"IN": list(_TITLES)}}, *person],
            [*person, {"ORTH": {"IN": ["(", ","]}}, {"LOWER": {"IN": ["dob", "d.o.b.", "born", "date"]}}],
        ])

    def __call__(self, doc: Doc) -> Doc:
        fields: dict[str, N.FieldHit] = doc._.fields
        cues = cues_of(doc)
        stop = {t.i for s in cues if s.label_ not in ("SALUTATION", "CLOSING") for t in s}
        closing_line = min(closing_lines(doc), default=10**9)
        salutation_lines = {s[0]._.line for s in cues if s.label_ == "SALUTATION"}
        dates = [e for e in doc.ents if e.label_ == "DATE"]
        for cue in cues:
            kind = cue.label_
            if cue[0]._.line >= closing_line:
                continue
            if kind == "PATIENT":
                self._patient(doc, cue, stop, fields)
            elif kind == "DOB":
                d = _date_after(cue, dates, stop)
                if d is not None and C + "patient_date_of_birth" not in fields:
                    fields[C + "patient_date_of_birth"] = N.hit(list(d), f"after '{cue.text}'",
                                                                _iso(parse_date_span(d)))
            elif kind == "DOS":
                self._dates_of_service(doc, cue, dates, stop, fields)
            elif kind in ("CLAIM", "REF", "AUTH", "MEMBER_ID"):
                key = C + {"CLAIM": "claim_number", "REF": "reference", "AUTH": "authorization_number",
                           "MEMBER_ID": "member_id"}[kind]
                if key in fields:
                    continue
                for where, cand in (("right of", N.right_of(cue, stop)), ("below", N.below(cue, stop))):
                    run = _ref_run(cand)
                    if run:
                        fields[key] = N.hit(run, f"{where} '{cue.text}'")
                        break
            elif kind == "DATE_CUE" and C + "letter_date" not in fields:
                d = _date_after(cue, dates, stop)
                if d is not None:
                    fields[C + "letter_date"] = N.hit(list(d), f"after '{cue.text}'", _iso(parse_date_span(d)))
        if C + "patient_name" not in fields:
            self._patient_in_prose(doc, fields, salutation_lines, closing_line)
        if C + "letter_date" not in fields:
            self._letter_date(doc, dates, fields)
        self._sender(doc, cues, fields)
        return doc

    # -- patient ------------------------------------------------------------------------------------

    def _patient(self, doc: Doc, cue: Span, stop: set[int], fields: dict[str, N.FieldHit]) -> None:
        if C + "patient_name" in fields:
            return
        for where, cand in (("right of", N.right_of(cue, stop, max_first_gap=6.0)), ("below", N.below(cue, stop))):
            got = _name_run(cand)
            if got:
                fields[C + "patient_name"] = N.hit(got, f"{where} '{cue.text}'", _person_name(got))
                return

    def _patient_in_prose(self, doc: Doc, fields: dict[str, N.FieldHit], salutation_lines: set[int],
                          closing_line: int) -> None:
        for _mid, start, end in sorted(self.prose(doc), key=lambda m: (m[1], -(m[2] - m[1]))):
            span = doc[start:end]
            if span[0]._.line in salutation_lines or span[0]._.line >= closing_line:
                continue
            if start > 0 and doc[start - 1].lower_ in _DOCTOR:
                continue
            toks = [t for t in span if t.text not in ("(", ",") and t.lower_ not in
                    ("patient", "member", "client", "named", "dob", "d.o.b.", "born", "date") and t.lower_ not in _TITLES]
            got = _name_run(toks)
            if got:
                fields[C + "patient_name"] = N.hit(got, "named in the letter's text", _person_name(got))
                dob = [e for e in doc.ents if e.label_ == "DATE" and 0 <= e.start - end <= 6]
                if dob and C + "patient_date_of_birth" not in fields and any(
                        t.lower_ in ("dob", "d.o.b.", "born", "birth") for t in doc[end - 1:dob[0].start]):
                    fields[C + "patient_date_of_birth"] = N.hit(list(dob[0]), "after the patient's name",
                                                                _iso(parse_date_span(dob[0])))
                return

    # -- dates ----------------------------------------------------------------------------------------

    def _dates_of_service(self, doc: Doc, cue: Span, dates: list[Span], stop: set[int],
                          fields: dict[str, N.FieldHit]) -> None:
        found: list[Span] = []
        right = N.right_of(cue, stop, max_first_gap=8.0, max_gap=3.0)
        ids = {t.i for t in right}
        found = [d for d in dates if d.start in ids]
        if not found:
            # A table column: dates under the header.
            x0, _y0, x1, y1 = N.span_box(cue)
            unit = N.height(cue[0])
            col = [d for d in dates if d[0]._.page == cue[0]._.page and d[0]._.y0 > y1
                   and d[0]._.x0 < x1 + unit and d[-1]._.x1 > x0 - unit and d[0]._.y0 - y1 < 25 * unit]
            col.sort(key=lambda d: d[0]._.y0)
            found = col[:12]
        if not found:
            return
        existing = fields.get(C + "dates_of_service")
        values = [_iso(parse_date_span(d)) for d in found]
        values = [v for v in values if v]
        if existing:
            values = [*existing.text.split(","), *values]
        uniq = sorted(dict.fromkeys(v for v in values if v))
        toks = [t for d in found for t in d]
        if uniq:
            fields[C + "dates_of_service"] = N.hit(toks, f"after '{cue.text}'", ",".join(uniq))
            fields[C + "date_of_service"] = N.hit(toks, f"after '{cue.text}'", uniq[0])

    def _letter_date(self, doc: Doc, dates: list[Span], fields: dict[str, N.FieldHit]) -> None:
        """The first date standing alone on its line in the top part of the first page."""
        if not dates:
            return
        first_page = min(t._.page for t in doc)
        top = [d for d in dates if d[0]._.page == first_page]
        if not top:
            return
        ys = [t._.y1 for t in doc if t._.page == first_page]
        limit = min(ys) + 0.45 * (max(ys) - min(ys))
        for d in top:
            line = [t for t in doc if t._.line == d[0]._.line]
            if d[0]._.y0 <= limit and len(line) <= len(d) + 1:
                fields[C + "letter_date"] = N.hit(list(d), "date line of the letter", _iso(parse_date_span(d)))
                return

    # -- sender -------------------------------------------------------------------------------------

    def _sender(self, doc: Doc, cues: list[Span], fields: dict[str, N.FieldHit]) -> None:
        """The letterhead: the most prominent line above the letter's date that is not an address, a
        phone number or a web address; else a 'From:' line; else an organisation after the closing."""
        if not len(doc):
            return
        first_page = min(t._.page for t in doc)
        lines: dict[int, list[Token]] = {}
        for t in doc:
            if t._.page == first_page and not t.is_space:
                lines.setdefault(t._.line, []).append(t)
        order = sorted(lines)
        unit = N.text_height(doc)
        date_line = next((ln for ln in order if _line_has_ent(doc, lines[ln], "DATE")), None)
        head = [ln for ln in order[:8] if date_line is None or ln < date_line] or order[:3]
        best: tuple[float, list[Token]] | None = None
        for rank, ln in enumerate(head):
            toks = lines[ln]
            if not any(t.is_alpha for t in toks) or _looks_like_address(toks):
                continue
            h = max(N.height(t) for t in toks) / unit
            org = _line_has_ent(doc, toks, "ORG") or _line_has_ent(doc, toks, "PAYER")
            score = h + (1.0 if org else 0.0) - 0.05 * rank
            if best is None or score > best[0]:
                best = (score, _trim_org(toks))
        if best and best[1]:
            toks = best[1]
            # A logo OCR'd into marks before the name: the name starts where an organisation does,
            # when what comes before it is no word at all.
            ents = [e for e in doc.ents if e.label_ in ("ORG", "PAYER") and e.start in {t.i for t in toks}]
            if ents and ents[0].start > toks[0].i and all(
                    len(t.text) <= 2 or not t.is_alpha for t in toks if t.i < ents[0].start):
                toks = [t for t in toks if t.i >= ents[0].start]
            fields[C + "sender"] = N.hit(toks, "letterhead")
            return
        for cue in cues:
            if cue.label_ == "FROM":
                cand = _org_run(N.right_of(cue, set()))
                if cand:
                    fields[C + "sender"] = N.hit(cand, f"after '{cue.text}'")
                    return
        closing = min(closing_lines(doc), default=None)
        if closing is not None:
            for e in doc.ents:
                if e.label_ in ("ORG", "PAYER") and e[0]._.line > closing:
                    fields[C + "sender"] = N.hit(list(e), "organisation under the signature")
                    return


def _line_has_ent(doc: Doc, toks: Sequence[Token], label: str) -> bool:
    ids = {t.i for t in toks}
    return any(e.label_ == label and e.start in ids for e in doc.ents)


def _looks_like_address(toks: Sequence[Token]) -> bool:
    """Street, city/state/ZIP, phone and web lines of a letterhead: mostly digits or contact words."""
    words = [t.lower_ for t in toks]
    digits = sum(sum(c.isdigit() for c in t.text) >= 3 for t in toks)  # house numbers, ZIP codes, phones
    contact = {"phone", "fax", "tel", "www", "suite", "street", "st", "ave", "avenue", "road", "rd", "blvd",
               "drive", "dr", "box", "p.o.", "po", "lane", "way", "floor", "ste", "tel.", "e-mail", "email"}
    return digits >= max(1, len(toks) // 3) or bool(contact & set(words)) or any("@" in w or "www" in w for w in words)


def _trim_org(toks: Sequence[Token]) -> list[Token]:
    """The letterhead's name without what a logo turns into under OCR: stray marks and single letters
    before the first real word."""
    out = [t for t in toks if not (t.is_punct and t.text not in ("&", "-", ".", "'", ","))]
    while out and (len(out[0].text) <= 2 and not out[0].text.isupper() or not any(c.isalpha() for c in out[0].text)
                   or (len(out[0].text) == 1 and len(out) > 1)):
        out = out[1:]
    while out and out[-1].text in (",", "-", "|"):
        out.pop()
    return out


def _org_run(toks: Sequence[Token]) -> list[Token]:
    out = []
    for t in toks:
        if t.text[:1].isupper() or t.text in ("&", "of", "and", "-", "the"):
            out.append(t)
        else:
            break
    return out if out and out[-1].text not in ("&", "of", "and", "-", "the") else []


def _name_run(toks: Sequence[Token]) -> list[Token] | None:
    """A person's name: 2-5 name words (a comma allowed once, for 'Last, First'), not cue words."""
    out: list[Token] = []
    commas = 0
    for t in toks:
        if t.text == "," and out and commas == 0 and len(out) <= 2:
            out.append(t)
            commas += 1
            continue
        if t.text in ("-", "'", "’") and out:
            out.append(t)
            continue
        if t.lower_ in _TITLES and not out:
            continue
        if not _NAME_WORD.match(t.text) or t.lower_ in _NOT_NAME or not (t.text[0].isupper()):
            break
        out.append(t)
        if sum(1 for x in out if x.is_alpha) >= 5:
            break
    while out and out[-1].text in (",", "-", "'", "’"):
        out.pop()
    words = [t for t in out if t.is_alpha or _NAME_WORD.match(t.text)]
    if len([w for w in words if len(w.text.rstrip(".")) >= 2]) >= 2:
        return out
    return None


def _person_name(toks: Sequence[Token]) -> str:
    """'DOE, JANE A' -> 'JANE A DOE'; hyphens and apostrophes keep their neighbours together."""
    text = N.tokens_text(toks)
    text = re.sub(r"\s*([-'’])\s*", r"\1", text)
    if "," in text:
        last, first = (p.strip() for p in text.split(",", 1))
        text = f"{first} {last}".strip()
    return " ".join(text.split())


def _date_after(cue: Span, dates: list[Span], stop: set[int]) -> Span | None:
    """The date a cue introduces: right of it, under it (a table), or, in running text that wrapped,
    within a few tokens after it."""
    right = N.right_of(cue, stop, max_first_gap=6.0, max_gap=2.0)
    ids = {t.i for t in right}
    for d in dates:
        if d.start in ids:
            return d
    below = N.below(cue, stop)
    ids = {t.i for t in below}
    for d in dates:
        if d.start in ids:
            return d
    for d in dates:
        if 0 <= d.start - cue.end <= 3 and all(not t.is_alpha for t in cue.doc[cue.end:d.start]):
            return d
    return None


def _ref_run(toks: Sequence[Token]) -> list[Token] | None:
    """A reference number: letters, digits and inner dashes, with at least three digits."""
    out: list[Token] = []
    for t in toks:
        if t.text in ("-", "–", "/") and out:
            out.append(t)
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-]*", t.text):
            break
        if out and out[-1].text not in ("-", "–", "/") and not (
                t._.x0 - out[-1]._.x1 < 0.6 * N.height(t) and any(c.isdigit() for c in t.text)):
            break
        out.append(t)
    while out and out[-1].text in ("-", "–", "/"):
        out.pop()
    text = "".join(t.text for t in out)
    if sum(c.isdigit() for c in text) >= 3 and len(text) >= 4:
        return out
    return None


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _org_patterns() -> list[dict[str, Any]]:
    cap = {"IS_TITLE": True}
    upper = {"IS_UPPER": True, "LENGTH": {">=": 2}}
    join = {"LOWER": {"IN": ["of", "and", "&", "for", "the"]}, "OP": "?"}
    tail = {"LOWER": {"IN": list(ORG_TAILS)}}
    pats = []
    for word in (cap, upper):
        pats.append({"label": "ORG", "pattern": [word, {**word, "OP": "*"}, join, {**word, "OP": "*"}, tail]})
    return pats


BUILDS = N.BUILDS  # BUILDS["letter"]: letter pipelines built in this process


@N.built_once("letter")
def letter_nlp(payers: Path, model: str | None) -> Language:
    """The letter pipeline, built once per process (per payer list and spaCy model)."""
    gaz = N.load_gazetteer(Path(payers))
    nlp = N.rule_pipeline(model, spans=("letter_cues", CUE_KEY),
                          span_patterns=lambda _n: [{"label": k, "pattern": p} for k, ps in CUES.items() for p in ps],
                          entities="letter_entities",
                          entity_patterns=lambda n: [*_date_patterns(), *N.payer_patterns(n, gaz), *_org_patterns()])
    nlp.add_pipe("letter_type")
    nlp.add_pipe("letter_fields", config={"payers": str(payers)})
    return nlp


# --------------------------------------------------------------------------------------------------
# Layout: is this a letter at all?
# --------------------------------------------------------------------------------------------------


@dataclass
class LetterLayout:
    is_letter: bool
    reasons: list[str]
    prose_lines: int
    width_in: float


def letter_layout(words: Sequence[N.WordBox], units_per_inch: float = 300.0,
                  payers: Path = N.DEFAULT_PAYERS) -> LetterLayout:
    """Running text across the page plus a letter's frame (salutation, closing, Re: line) or letter
    vocabulary. Forms have short label lines; cards have little text at all."""
    if not words:
        return LetterLayout(False, [], 0, 0.0)
    lines = N.group_lines(words)
    prose = 0
    for ln in lines:
        span_in = (ln[-1].x1 - ln[0].x0) / units_per_inch
        gaps = [b.x0 - a.x1 for a, b in zip(ln, ln[1:], strict=False)]
        h = max(1e-6, sorted(w.height for w in ln)[len(ln) // 2])
        if len(ln) >= 7 and span_in >= 3.0 and (not gaps or max(gaps) < 2.5 * h):
            prose += 1
    width = (max(w.x1 for w in words) - min(w.x0 for w in words)) / units_per_inch
    nlp = letter_nlp(payers)
    doc = nlp(N.make_doc(nlp, words))
    kinds = {s.label_ for s in cues_of(doc)}
    reasons = []
    if prose:
        reasons.append(f"{prose} line(s) of running text")
    frame = [k.lower() for k in ("SALUTATION",) if k in kinds]
    if closing_lines(doc):
        frame.append("closing")
    if C + "letter_date" in doc._.fields and doc._.fields[C + "letter_date"].how == "date line of the letter":
        frame.append("date line")
    if any(s.label_ == "PATIENT" and s.text.lower() in ("re", "regarding", "subject") for s in cues_of(doc)):
        frame.append("re line")
    if frame:
        reasons.append("letter frame: " + ", ".join(frame))
    scores = doc._.letter_scores or {}
    typed = doc._.letter_type not in (None, "other")
    if typed:
        reasons.append(f"letter vocabulary ({doc._.letter_type_reason})")
    is_letter = ((prose >= 3 and (bool(frame) or typed)) or prose >= 6
                 or (prose >= 1 and len(frame) >= 2) or len(frame) >= 3
                 or (prose >= 2 and len(frame) >= 1 and typed)
                 or (typed and max(scores.values(), default=0) >= 8 and len(words) >= 60))
    return LetterLayout(is_letter, reasons, prose, width)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass
class LetterReading:
    fields: dict[str, RawField] = field(default_factory=dict)
    flags: list[RawFlag] = field(default_factory=list)
    type_reason: str = ""
    how: dict[str, str] = field(default_factory=dict)


def read_letter_words(words: Sequence[N.WordBox], *, payers: Path = N.DEFAULT_PAYERS) -> LetterReading:
    """Type and fields of a letter from its words (all pages)."""
    nlp = letter_nlp(payers)
    doc = nlp(N.make_doc(nlp, words))
    hits: dict[str, N.FieldHit] = doc._.fields
    _fill_from_model(doc, hits)
    out = LetterReading(type_reason=doc._.letter_type_reason or "")
    out.fields[C + "type"] = RawField(doc._.letter_type or "other", 1.0, 1)
    out.how[C + "type"] = out.type_reason
    for key, h in hits.items():
        out.fields[key] = RawField(h.text, round(h.conf, 3), h.page)
        out.how[key] = h.how
    out.flags.append(RawFlag("correspondence.type", "info", f"letter type {doc._.letter_type}: {out.type_reason}",
                             C + "type"))
    if C + "patient_name" not in hits:
        out.flags.append(RawFlag("correspondence.no_patient", "warning",
                                 "No patient name was found in the letter; please file it by hand", C + "patient_name"))
    for key in LETTER_KEYS:
        out.fields.setdefault(key, RawField(None, 1.0, None))
    return out


def _fill_from_model(doc: Doc, hits: dict[str, N.FieldHit]) -> None:
    """Where rules found no patient or sender, the PERSON/ORG entities of a statistical model (when the
    pipeline is built on one, see :mod:`extractors.spacy_model`) are used, with lower confidence. A blank
    pipeline has none: nothing changes."""
    found = [e for e in N.model_entities(doc) if e[0]._.line == e[-1]._.line]
    if C + "patient_name" not in hits:
        for e in found:
            if e.label_ == "PERSON" and len(e.text.split()) >= 2 and not e.text.lower().startswith(("dr", "dear")):
                hits[C + "patient_name"] = N.FieldHit(e.text, min(0.7, min(float(t._.conf) for t in e)),
                                                      e[0]._.page, "statistical model (PERSON)", tuple(t.i for t in e))
                break
    if C + "sender" not in hits:
        for e in found:
            if e.label_ == "ORG":
                hits[C + "sender"] = N.FieldHit(e.text, 0.7, e[0]._.page, "statistical model (ORG)",
                                                tuple(t.i for t in e))
                break

"""Field-type decoding: what a reading of a field can mean, given the field's type, and how sure that is.

Why: a recognition engine reads shapes, not fields. On handwriting it confuses letters and digits of the same
shape (O/0, I/1, S/5, Z/2, B/8), drops or adds separators and spaces, and cannot know which century a
two-digit year belongs to. The field's type knows: a ZIP is digits, a state is one of a list, a phone number
has ten digits, a date has a month, a day and a year. Decoding turns a raw reading into the text the
normaliser expects, or says why it cannot (a reason with no patient data in it).

:func:`decide` then chooses between two engines' readings of the same field. A wrong value that nobody is
asked to look at costs more than a look, so the rule is plain: two independent engines that agree on a
value that fits its type are trusted; anything else (disagreement, a value that fits only one way, a year
whose century is a guess) goes to review, with the best reading and the reason.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

STATES = frozenset(
    ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR", "GU", "VI", "AS", "MP", "FM", "MH", "PW", "AA", "AE", "AP"])
TLDS = frozenset(["com", "net", "org", "edu", "gov", "us", "io", "info", "biz", "me", "co", "mil", "health", "care", "app", "email"])
# Shapes an engine reads as a letter where the field can only hold a digit, and the other way round.
TO_DIGIT = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1",
                          "L": "1", "Z": "2", "z": "2", "S": "5", "s": "5", "B": "8", "G": "6", "b": "6",
                          "g": "9", "q": "9", "T": "7", "A": "4"})
TO_LETTER = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "7": "T"})
MBI = re.compile(r"^[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9]"
                 r"[AC-HJKMNP-RT-Y]{2}[0-9]{2}$")
SEX = {"F": "F", "FEMALE": "F", "M": "M", "MALE": "M", "X": "X"}
MAX_AGE = 105
BOX_EDGES = "|[]{}"  # a box's side line, read as a character at either end of the writing


@dataclass(frozen=True)
class Decoded:
    """A reading as its field type understands it: ``text`` for the normaliser, ``key`` to compare two
    readings by (case, spacing and separators that do not change the value folded away), and ``doubt``:
    None when the reading fits its type with no guess, else why not (no patient data)."""

    text: str
    key: str
    doubt: str | None = None


@dataclass(frozen=True)
class Candidate:
    text: str
    conf: float  # 0..1, the engine's own
    engine: str
    weakest: float | None = None  # the least sure character's confidence, where the engine gives one


@dataclass(frozen=True)
class Choice:
    text: str
    conf: float
    reason: str | None  # why a person should look; None when trusted


def _fold(text: str) -> str:
    return " ".join(text.split())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text.translate(TO_DIGIT))


def decode_date(text: str, *, birth: bool, today: date) -> Decoded:
    """Month first, any separator (or none), a four- or two-digit year. A two-digit year of a date of
    birth is put in the century that makes the patient between 0 and 105 years old; when both centuries
    do, it is a guess, and said so. Any other date with a two-digit year is put within a year of today."""
    raw = text.strip().translate(TO_DIGIT)
    parts = [p for p in re.split(r"[^0-9]+", raw) if p]
    if len(parts) == 1 and len(parts[0]) in (6, 8):
        p = parts[0]
        parts = [p[:2], p[2:4], p[4:]]
    if len(parts) != 3 or len(parts[2]) not in (2, 4) or not (1 <= len(parts[0]) <= 2 and 1 <= len(parts[1]) <= 2):
        return Decoded(text, _digits(text), "not a date")
    m, d, y = int(parts[0]), int(parts[1]), int(parts[2])
    doubt = None
    if len(parts[2]) == 2:
        options = []
        for century in (1900, 2000):
            try:
                when = date(century + y, m, d)
            except ValueError:
                continue
            age = (today - when).days / 365.25
            ok = 0 <= age <= MAX_AGE if birth else abs(age) <= 1.0
            if ok:
                options.append(when)
        if not options:
            return Decoded(text, _digits(text), "a two-digit year that fits no century")
        if len(options) > 1:
            doubt = "a two-digit year whose century is not certain"
        when = options[-1]
    else:
        try:
            when = date(y, m, d)
        except ValueError:
            return Decoded(text, _digits(text), "not a calendar date")
        if birth and not 0 <= (today - when).days / 365.25 <= MAX_AGE:
            doubt = "a date of birth out of the range of ages"
    out = f"{when.month:02d}/{when.day:02d}/{when.year}"
    return Decoded(out, when.isoformat(), doubt)


def decode_phone(text: str) -> Decoded:
    digits = _digits(text)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in "01" or digits[3] in "01":
        return Decoded(text, digits, "not a 10-digit US phone number")
    return Decoded(f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", digits)


def decode_zip(text: str) -> Decoded:
    digits = _digits(text)
    if len(digits) == 5:
        return Decoded(digits, digits)
    if len(digits) == 9:
        return Decoded(f"{digits[:5]}-{digits[5:]}", digits)
    return Decoded(text, digits, "not a ZIP code")


def npi_fits(digits: str) -> bool:
    """Ten digits, first 1 or 2, and the Luhn check digit over the prefix 80840 (as CMS issues NPIs)."""
    if len(digits) != 10 or not digits.isdigit() or digits[0] not in "12":
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def decode_npi(text: str) -> Decoded:
    digits = _digits(text)
    return Decoded(digits, digits, None if npi_fits(digits) else "not an NPI (10 digits with its check digit)")


def decode_state(text: str) -> Decoded:
    code = re.sub(r"[^A-Za-z0-9]", "", text).upper().translate(TO_LETTER)
    if code in STATES:
        return Decoded(code, code)
    return Decoded(text, code, "not a US state code")


def decode_email(text: str) -> Decoded:
    t = "".join(text.split()).lower().replace("(at)", "@").replace("©", "@").rstrip(".,")
    if t.count("@") != 1:
        return Decoded(t, t, "not an e-mail address")
    local, domain = t.split("@")
    tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
    if not local or not re.fullmatch(r"[a-z0-9._%+'-]+", local) or not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
        return Decoded(t, t, "not an e-mail address")
    if tld not in TLDS:
        return Decoded(t, t, "an e-mail address with an unknown ending")
    return Decoded(t, t)


def decode_id(text: str) -> Decoded:
    t = re.sub(r"[\s\-.]", "", text).upper()
    if not re.fullmatch(r"[A-Z0-9]{4,20}", t):
        return Decoded(t, t, "not an identifier")
    if len(t) == 11 and t[0] in "123456789" and not MBI.match(t):
        # Eleven characters starting with a digit is a Medicare MBI's shape; its classes must hold.
        return Decoded(t, t, "not a Medicare number (MBI)")
    return Decoded(t, t)


_NAME = re.compile(r"^[^\W\d_]+(?:[ '’\-.][^\W\d_]*)*$", re.UNICODE)


def decode_name(text: str) -> Decoded:
    t = unicodedata.normalize("NFC", _fold(text)).strip(",.;:'\"` ")
    if not _NAME.match(t):
        return Decoded(t, _spaceless(t), "not a person's name")
    repaired = stray_mark(t)
    if repaired is not None:
        return Decoded(repaired, _spaceless(repaired), STRAY_MARK)
    return Decoded(t, _spaceless(t))


DIAERESIS = "\u0308"
STRAY_MARK = "an accent mark looks doubled or misplaced"


def _marks(ch: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.combining(c))


def _base(ch: str) -> str:
    return unicodedata.normalize("NFD", ch)[:1].casefold()


def stray_mark(text: str) -> str | None:
    """A name as an engine misreads a letter with a diaeresis: the letter twice, once without its mark
    ("Anaiïs", "Moiïse"), or an echo of it, a marked letter right after it ("Anaïäs", "ANAÏŤS"). No name
    spells a letter beside its own diaeresis twin, nor puts a second marked letter right after a diaeresis
    (a marked letter after a plain one, as in Renée, is a name; only the diaeresis is looked at). Returns
    the name with the echo taken out (the reading a person most likely confirms), or None when the name
    shows neither pattern. Said to a person either way: the repair is a guess."""
    chars = list(unicodedata.normalize("NFC", text))
    out: list[str] = []
    changed = False
    i = 0
    while i < len(chars):
        a = chars[i]
        b = chars[i + 1] if i + 1 < len(chars) else ""
        if b and a.isalpha() and b.isalpha():
            ma, mb = _marks(a), _marks(b)
            if DIAERESIS in ma + mb and _base(a) == _base(b) and bool(ma) != bool(mb):
                out.append(a if ma else b)  # "iï" / "ïi": one letter, with its mark
                i += 2
                changed = True
                continue
            if DIAERESIS in ma and mb:
                out.append(a)  # "ïä": the marked letter after the diaeresis is its echo
                i += 2
                changed = True
                continue
        out.append(a)
        i += 1
    return "".join(out) if changed else None


def decode_sex(text: str) -> Decoded:
    t = re.sub(r"[^A-Za-z]", "", text).upper()
    if t in SEX:
        return Decoded(t if len(t) == 1 else t.capitalize(), SEX[t])
    return Decoded(text, t, "not F, M or X")


def decode(ftype: str, text: str, *, key: str = "", today: date | None = None,
           relationships: frozenset[str] = frozenset()) -> Decoded:
    """``text`` as the field type ``ftype`` reads it."""
    today = today or date.today()
    text = text.strip().strip(BOX_EDGES).strip()
    if not text:
        return Decoded("", "", "nothing read")
    if ftype == "date":
        return decode_date(text, birth="birth" in key, today=today)
    if ftype == "phone":
        return decode_phone(text)
    if ftype == "zip":
        return decode_zip(text)
    if ftype == "npi":
        return decode_npi(text)
    if ftype == "state":
        return decode_state(text)
    if ftype == "email":
        return decode_email(text)
    if ftype == "id":
        return decode_id(text)
    if ftype == "name":
        return decode_name(text)
    if ftype == "sex":
        return decode_sex(text)
    if ftype == "relationship" and relationships:
        t = _fold(text).lower()
        return Decoded(t, t, None if t in relationships else "not a known relationship")
    t = _fold(text)
    return Decoded(t, _spaceless(t))


def _spaceless(text: str) -> str:
    """Engines drop the space between handwritten words more often than they invent one: readings are
    compared without spaces, and the one that kept them is handed on."""
    return "".join(text.split()).casefold()


TRUSTED = 0.93
DOUBT = 0.6
UNFIT = 0.3
# Types whose format is strict enough that a misreading rarely still fits: a reading of one engine alone is
# trusted there when the engine is sure of the whole reading and of every character in it.
STRICT_TYPES = frozenset({"date", "phone", "zip", "state", "email", "sex", "relationship"})
ALONE_SCORE = 0.97
ALONE_WEAKEST = 0.90  # strict types
ALONE_WEAKEST_FREE = 0.96  # names, free text, identifiers: any letter fits, so every letter must be sure
OTHER_UNSURE = 0.5
MAJORITY_OVERRULES = 0.95
AGREED_WEAKEST = 0.6


def _accent_dropped(text: str, others: list[Candidate]) -> bool:
    """Does another reading of much the same letters carry marks where this one has none (Zoë read as Zoe)?
    A garbled reading with a stray mark (Medieľaid) is no evidence of an accent."""
    if not text.isascii():
        return False
    plain = _spaceless(text)
    for o in others:
        if any(ch.isalpha() and not ch.isascii() for ch in o.text):
            folded = _spaceless("".join(ch for ch in unicodedata.normalize("NFD", o.text)
                                        if not unicodedata.combining(ch)))
            if difflib.SequenceMatcher(None, plain, folded).ratio() >= 0.8:
                return True
    return False


def _sure_alone(ftype: str, c: Candidate, others: list[Candidate]) -> bool:
    """May one engine's reading stand without the other's agreement? Only when that engine is sure of the
    whole reading and of its least sure character, and the other engine was itself unsure (a confident
    different reading is a real disagreement). A reading that drops the accents the other engine saw
    (Seán read as Sean) never stands alone."""
    if c.weakest is None or c.conf < ALONE_SCORE:
        return False
    if c.weakest < (ALONE_WEAKEST if ftype in STRICT_TYPES else ALONE_WEAKEST_FREE):
        return False
    return not any(o.conf >= OTHER_UNSURE for o in others)



def decide(ftype: str, readings: list[Candidate], *, key: str = "", today: date | None = None,
           relationships: frozenset[str] = frozenset()) -> Choice:
    """One value from the engines' readings of a field (several engines, or one engine on several crops).

    The readings that fit the type are grouped by the value they decode to; the largest group is the
    candidate. It is trusted when no other reading was made with confidence (a confident different
    reading is a real disagreement), no character of it was unsure, and either every reading agrees or
    the candidate's engine was sure of the whole reading and of each character. Anything else goes to
    review with the best reading and the reason; a reading that fits no way goes with the reason why."""
    decoded = [(c, decode(ftype, c.text, key=key, today=today, relationships=relationships)) for c in readings
               if c.text.strip()]
    if not decoded:
        return Choice("", 0.0, "nothing could be read")
    fit = [(c, d) for c, d in decoded if d.doubt is None]
    if not fit:
        best = max(decoded, key=lambda cd: cd[0].conf)
        return Choice(best[1].text, UNFIT, best[1].doubt)
    groups: dict[str, list[tuple[Candidate, Decoded]]] = {}
    for c, d in fit:
        groups.setdefault(d.key, []).append((c, d))
    major = max(groups.values(), key=lambda g: (len(g), max(c.conf for c, _ in g)))
    best_c, best_d = max(major, key=lambda cd: (cd[1].text.count(" "), cd[0].conf))
    dissent = [c for c, _ in decoded if all(c is not m for m, _ in major)]
    # Several readings that agree, each sure of every character, outweigh a dissent that was not sure.
    sure_major = len(major) >= 2 and all(c.weakest is not None and c.conf >= ALONE_SCORE
                                         and c.weakest >= ALONE_WEAKEST for c, _ in major)
    if any(c.conf >= (MAJORITY_OVERRULES if sure_major else OTHER_UNSURE) for c in dissent):
        return Choice(best_d.text, DOUBT, "the recognition engines read this differently")
    if any(c.weakest is not None and c.weakest < AGREED_WEAKEST for c, _ in major):
        # Readings may agree and share a blind spot (Í read as T by both): an unsure character is looked at.
        return Choice(best_d.text, DOUBT, "a character of this reading is unsure")
    if ftype in ("name", "text") and len({d.text.replace(" ", "") for _, d in major}) > 1:
        return Choice(best_d.text, DOUBT, "the readings differ in upper and lower case")
    if ftype in ("name", "text") and _accent_dropped(best_d.text, dissent):
        return Choice(best_d.text, DOUBT, "another reading has accents this one lacks")
    if len(major) >= 2 and (not dissent or sure_major):
        return Choice(best_d.text, TRUSTED, None)
    if _sure_alone(ftype, best_c, dissent):
        return Choice(best_d.text, TRUSTED - 0.01, None)
    return Choice(best_d.text, DOUBT, "read with confidence by one engine only" if len(major) == 1
                  else "an engine could not read this")

"""Per-type normalisers: turn what a patient wrote into the value the output contract promises.

Each normaliser returns ``(value, problem)``: ``problem`` is ``None`` when the raw text fits the type, else a
short reason (no patient data in it) that validation turns into an ``invalid`` flag. A blank gives
``(None, None)`` (checkboxes and signatures: ``False``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date

from extractors.decode import npi_fits

Result = tuple[str | bool | None, str | None]

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico", "GU": "Guam",
    "VI": "U.S. Virgin Islands", "AS": "American Samoa", "MP": "Northern Mariana Islands",
    "FM": "Federated States of Micronesia", "MH": "Marshall Islands", "PW": "Palau",
    "AA": "Armed Forces Americas", "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
}
_STATE_BY_NAME = {name.lower(): code for code, name in US_STATES.items()}

_TRUE_MARKS = {"/yes", "yes", "y", "true", "on", "/on", "x", "checked", "1", "✓", "✔", "☑", "☒"}
_FALSE_MARKS = {"/off", "off", "no", "n", "false", "0", "unchecked", ""}


def collapse(raw: str | None) -> str | None:
    """Fold runs of whitespace; a blank becomes None. Case and diacritics stay: a name is an identifier."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFC", " ".join(str(raw).split()))
    return text or None


def norm_text(raw: str | None) -> Result:
    return collapse(raw), None


_NAME_OK = re.compile(r"^[^\W\d_]+(?:[ '’.\-][^\W\d_]*)*\.?$", re.UNICODE)


def norm_name(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    # "Anne- Marie", "Saint -Pierre": a hyphenated name is one word; a reader (handwriting most of all)
    # sees a gap beside the hyphen that the patient did not mean.
    text = re.sub(r"\s*-\s*", "-", text)
    return text, None if _NAME_OK.match(text) else "not a person's name"


_DATE_PATTERNS = (
    re.compile(r"^(?P<m>\d{1,2})[/\-. ](?P<d>\d{1,2})[/\-. ](?P<y>\d{4}|\d{2})$"),
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<m>\d{2})(?P<d>\d{2})(?P<y>\d{4})$"),
)


def parse_date(text: str, *, today: date | None = None) -> date | None:
    """US order (month first). Two-digit years pivot so the date is not in the future."""
    today = today or date.today()
    for pat in _DATE_PATTERNS:
        m = pat.match(text.strip())
        if not m:
            continue
        year = int(m["y"])
        if len(m["y"]) == 2:
            year += 2000 if 2000 + year <= today.year else 1900
        try:
            return date(year, int(m["m"]), int(m["d"]))
        except ValueError:
            return None
    return None


def norm_date(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    parsed = parse_date(text)
    if parsed is None:
        return None, "not a date (expected MM/DD/YYYY)"
    return parsed.isoformat(), None


def norm_phone(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    digits = re.sub(r"\D", "", text.split("x")[0].split("ext")[0])
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None, "not a 10-digit US phone number"
    if digits[0] in "01" or digits[3] in "01":
        return digits, "not a valid US phone number"
    return digits, None


# ASCII only: the address must work in the practice's own mail and portal systems, and a letter with
# a mark (ę, ı) in an address read from a scan is an OCR slip, which this sends back for a second reading.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


#: Mailbox providers most patients use. A domain one letter away from one of them ("yanoo.com",
#: "gmial.com") is almost always a slip of the pen or of the reader, and mail sent there is lost.
COMMON_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com",
                       "msn.com", "live.com", "comcast.net", "att.net", "verizon.net", "me.com", "mail.com",
                       "protonmail.com", "ymail.com", "sbcglobal.net", "example.com", "example.org", "example.net")


def _one_edit_apart(a: str, b: str) -> bool:
    """One letter changed, added, dropped, or two neighbours swapped (and not equal)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def norm_email(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    text = text.replace(" ", "").lower()
    if not _EMAIL.match(text):
        return text, "not an e-mail address"
    domain = text.rsplit("@", 1)[1]
    near = None if domain in COMMON_MAIL_DOMAINS else next(
        (d for d in COMMON_MAIL_DOMAINS if _one_edit_apart(domain, d)), None)
    if near is not None:
        return text, f"the domain looks like a misspelling of {near}; please check it"
    return text, None


_STATE_DIGITS = str.maketrans({"0": "O", "1": "I"})


def norm_state(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    code = text.replace(".", "").upper()
    if code in US_STATES:
        return code, None
    # A state code has no digits: a scan's 0 or 1 there is the letter (0K is OK, 1L is IL).
    letters = code.translate(_STATE_DIGITS)
    if len(code) == 2 and letters != code and letters in US_STATES:
        return letters, None
    by_name = _STATE_BY_NAME.get(text.lower())
    if by_name:
        return by_name, None
    return code, "not a US state"


def norm_zip(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    digits = re.sub(r"[^\d]", "", text)
    if len(digits) == 5:
        return digits, None
    if len(digits) == 9:
        return f"{digits[:5]}-{digits[5:]}", None
    return text, "not a ZIP code"


def norm_id(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    value = re.sub(r"[\s\-]", "", text).upper()
    if not value:
        return None, None
    return value, None if re.fullmatch(r"[A-Z0-9]+", value) else "contains characters other than letters and digits"


_SEX = {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M", "x": "X", "other": "X",
        "nonbinary": "X", "non-binary": "X"}


def norm_sex(raw: str | None) -> Result:
    text = collapse(raw)
    if text is None:
        return None, None
    value = _SEX.get(text.lower().rstrip("."))
    return (value, None) if value else (text, "not F, M or X")


def norm_checkbox(raw: str | None) -> Result:
    if raw is None:
        return False, None
    text = str(raw).strip().lower()
    if text in _TRUE_MARKS:
        return True, None
    if text in _FALSE_MARKS:
        return False, None
    # Any other mark inside a box is still a mark: a checkbox export value other than Off means checked.
    return True, None


def norm_signature(raw: str | None) -> Result:
    text = collapse(raw)
    return (text is not None and text.lower() not in _FALSE_MARKS), None


def norm_npi(raw: str | None) -> Result:
    """A National Provider Identifier: 10 digits, written with spaces or dashes or not, first digit 1 or 2;
    the check digit must match (Luhn over the prefix 80840, as :func:`frontdesk.billable.check_npi`)."""
    text = collapse(raw)
    if text is None:
        return None, None
    value = re.sub(r"[\s\-]", "", text)
    if len(value) != 10 or not value.isdigit() or value[0] not in "12":
        return value, "not an NPI (10 digits, starting with 1 or 2)"
    return value, None if npi_fits(value) else "not an NPI (check digit does not match)"


def make_choice(choices: tuple[str, ...]) -> Callable[[str | None], Result]:
    """One of the answers the form offers, as the vocabulary spells it (case and spacing ignored)."""
    by_fold = {" ".join(c.lower().split()): c for c in choices}

    def norm_choice(raw: str | None) -> Result:
        text = collapse(raw)
        if text is None:
            return None, None
        value = by_fold.get(text.lower().rstrip("."))
        return (value, None) if value else (text, "not one of the answers the form offers")

    return norm_choice


def make_relationship(spellings: Mapping[str, str]) -> Callable[[str | None], Result]:
    def norm_relationship(raw: str | None) -> Result:
        text = collapse(raw)
        if text is None:
            return None, None
        value = spellings.get(text.lower().rstrip("."))
        return (value, None) if value else (text.lower(), "not a known relationship (self, spouse, child, parent, other)")

    return norm_relationship


NORMALISERS: dict[str, Callable[[str | None], Result]] = {
    "text": norm_text,
    "name": norm_name,
    "date": norm_date,
    "phone": norm_phone,
    "email": norm_email,
    "state": norm_state,
    "zip": norm_zip,
    "id": norm_id,
    "sex": norm_sex,
    "checkbox": norm_checkbox,
    "signature": norm_signature,
    "npi": norm_npi,
}

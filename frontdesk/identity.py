"""Who a document is about: the one name fold and the one patient key every part of Frontdesk uses.

The same person is "Michał Nowak" on the intake form, "MICHAL NOWAK" on the insurance card, "Nowak,
Michal" in the scheduler's export and "José García-López" / "GARCIA LOPEZ, JOSE" elsewhere. Records (the
patient key), cards and correspondence (name fitting) and the pre-visit checks (the appointment index)
compare names only through :func:`fold`, so a spelling that one of them takes for the same person, all
of them do.
"""

from __future__ import annotations

import unicodedata
from datetime import date

# Letters that Unicode does not decompose into a base letter plus an accent (NFKD leaves "ł" as it is).
_FOLD = str.maketrans({"ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d",
                       "ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "þ": "th", "Þ": "th",
                       "ı": "i", "ŀ": "l", "Ŀ": "l", "ħ": "h", "Ħ": "h", "ŧ": "t", "Ŧ": "t"})


def fold(text: str | None) -> str:
    """Case, accents, spaces and punctuation removed: 'Mary-Kate O'Neil' -> 'marykateoneil', 'Michał'
    -> 'michal'. A name written in capitals without accents is the same person as the accented form."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed.casefold() if c.isalnum() and not unicodedata.combining(c))


def match_key(first: str, last: str, dob: date) -> str:
    """The records' patient key (``patients.match_key``): folded last and first name and date of birth."""
    return f"{fold(last)}|{fold(first)}|{dob.isoformat()}"

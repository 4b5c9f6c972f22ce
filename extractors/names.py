"""Names compared the way the front desk compares them, without spaCy: used by the readers
(:mod:`extractors.nlp`) and by the pre-visit check's payer formats (:mod:`frontdesk.checks.config`)."""

from __future__ import annotations

import re
import unicodedata


def payer_key(name: str) -> str:
    """Case, accents, punctuation and a trailing "Inc." do not matter: 'UnitedHealthcare, Inc.' and
    'unitedhealthcare' are one payer."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace("&", " and ")
    words = re.findall(r"[a-z0-9]+", text)
    while words and words[-1] in ("inc", "co", "corp", "company", "llc"):
        words.pop()
    return " ".join(words)

"""The language a patient's letters are written in, and dates and money as that language writes them.

A practice in the US gets every letter template in English (``templates/letters/<kind>.docx``) and in
Spanish (``templates/letters/es/<kind>.docx``, built by ``scripts/build_letters.py``). The patient's
preferred language (``patient.preferred_language`` on the record, as the form gives it: "Spanish",
"Español", "es"...) chooses; anything else, or nothing, is English. Dates and amounts are formatted with
Babel's CLDR data for the language ("29 de noviembre de 2026", "martes, 8 de diciembre de 2026", "9:30
a.m."), so a Spanish letter does not carry English month names.

The chosen language is stored in the letter's context (``language``), so a letter rendered later by the
mail batch uses the template it was written for.
"""

from __future__ import annotations

import unicodedata
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

PREFERRED_LANGUAGE_KEY = "patient.preferred_language"
DEFAULT = "en"
#: Language code -> the locale its dates and money are formatted in (US conventions for both).
LOCALES = {"en": "en_US", "es": "es_US"}
_NAMES = {
    "en": {"en", "eng", "english", "ingles"},
    "es": {"es", "spa", "spanish", "espanol", "castellano", "es-us", "es-mx", "es_us", "es_mx"},
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def language_of(value: Any) -> str:
    """The letter language for a preferred-language answer: "es" for Spanish in any usual spelling,
    else English (the practice's own language, and the one every template exists in)."""
    if not isinstance(value, str) or not value.strip():
        return DEFAULT
    word = _fold(value)
    for code, names in _NAMES.items():
        if word in names:
            return code
    return DEFAULT


def letter_date(day: date, language: str = DEFAULT) -> str:
    """A date as a letter writes it: "November 29, 2026" / "29 de noviembre de 2026"."""
    from babel.dates import format_date

    return str(format_date(day, format="long", locale=LOCALES.get(language, LOCALES[DEFAULT])))


def weekday_date(day: date, language: str = DEFAULT) -> str:
    """"Tuesday, December 8, 2026" / "martes, 8 de diciembre de 2026"."""
    from babel.dates import format_date

    return str(format_date(day, format="full", locale=LOCALES.get(language, LOCALES[DEFAULT])))


def clock_time(at: time, language: str = DEFAULT) -> str:
    """"9:30 AM" / "9:30 a.m."."""
    from babel.dates import format_time

    # CLDR puts a narrow no-break space before AM/PM, which letter fonts may lack: a plain space prints.
    text = str(format_time(at, format="short", locale=LOCALES.get(language, LOCALES[DEFAULT])))
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def money(amount: Decimal, language: str = DEFAULT) -> str:
    """US dollars as the language writes them ("$1,234.50" in both en_US and es_US)."""
    from babel.numbers import format_currency

    return str(format_currency(amount, "USD", locale=LOCALES.get(language, LOCALES[DEFAULT])))


def template_for(letters_dir: Path, kind: str, language: str = DEFAULT) -> Path:
    """The template of ``kind`` in ``language``, or the English one when the practice has none in it."""
    if language != DEFAULT:
        translated = Path(letters_dir) / language / f"{kind}.docx"
        if translated.is_file():
            return translated
    return Path(letters_dir) / f"{kind}.docx"


def context_language(context: Any) -> str:
    """The language a stored letter context was written in."""
    if isinstance(context, dict) and context.get("language") in LOCALES:
        return str(context["language"])
    return DEFAULT


__all__ = ["DEFAULT", "LOCALES", "PREFERRED_LANGUAGE_KEY", "clock_time", "context_language", "language_of",
           "letter_date", "money", "template_for", "weekday_date"]

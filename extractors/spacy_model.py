"""Which spaCy model the card and letter pipelines are built on: the ``extraction.spacy_model`` setting,
process-wide. Empty (the default): a blank English pipeline, rules only. Set: an installed model package
(``en_core_web_sm``) or a model folder, whose components run before the project's own.

Kept free of spaCy imports, so settings can be checked and a Reader configured without loading spaCy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SETTING = "extraction.spacy_model"

_current: str | None = None


class ModelUnavailable(Exception):
    """The named model is not installed or cannot be loaded. The message names the setting."""


def normalise(name: str | None) -> str | None:
    name = (name or "").strip()
    return name or None


def installed(name: str) -> bool:
    """A model package that can be imported, or a folder holding a saved pipeline."""
    path = Path(name).expanduser()
    if path.is_dir():
        return (path / "config.cfg").is_file()
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def problem(name: str | None) -> str | None:
    """Why ``name`` cannot be used, in one line naming the setting; None when it can (or is empty)."""
    name = normalise(name)
    if name is None or installed(name):
        return None
    return (f"spaCy model {name!r} is not installed (install the model package, e.g. "
            f"'python -m spacy download {name}', or leave {SETTING} empty for the rule-based pipeline)")


def use(name: str | None) -> None:
    """Build every card and letter pipeline from now on on ``name`` (None or empty: blank English).
    Pipelines already built for another model stay cached under that model's name."""
    global _current
    name = normalise(name)
    why = problem(name)
    if why is not None:
        raise ModelUnavailable(why)
    _current = name


def current() -> str | None:
    return _current

"""Examples at the end of every command's ``--help``.

Staff copy commands from the help; an example that no longer runs teaches them the tool is wrong. So
each command passes its examples here, and ``tests/test_help.py`` runs every one of them (in a throw-away
practice with a generated form, appointment export and ledger) and checks that every option a help text
points to exists. An example that runs until stopped (``watch``, ``serve``) is marked so, and the test
starts it, sees it running and stops it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

HEADING = "examples:"
RUNS_UNTIL_STOPPED = "(runs until stopped)"
#: Starts the "what" of an example that needs something a throw-away practice cannot have (a clearinghouse
#: response, the billing settings, a flag's or a document's id): the help test parses it but does not run it.
NEEDS = "(needs "
#: The patient id examples use; the help test puts a real patient's id in its place.
EXAMPLE_PATIENT = "pat-7f3a9c2e41b0"


@dataclass(frozen=True)
class Example:
    command: str  # as typed, starting with "frontdesk "
    what: str  # what it does, in plain words

    @property
    def long_running(self) -> bool:
        return RUNS_UNTIL_STOPPED in self.what

    @property
    def needs_setup(self) -> bool:
        return self.what.startswith(NEEDS)


def examples(*items: tuple[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``add_parser``: an epilog listing the examples, kept as written."""
    lines = [HEADING]
    for command, what in items:
        if not command.startswith("frontdesk "):
            raise ValueError(f"an example must start with 'frontdesk ': {command!r}")
        lines.append(f"  {command}")
        lines.append(f"      {what}")
    return {"epilog": "\n".join(lines), "formatter_class": argparse.RawDescriptionHelpFormatter}


def parse_examples(help_text: str) -> list[Example]:
    """The examples in a help text, in order (what :func:`examples` wrote)."""
    found: list[Example] = []
    lines = help_text.splitlines()
    try:
        start = lines.index(HEADING)
    except ValueError:
        return found
    pending: str | None = None
    for line in lines[start + 1:]:
        if line.startswith("  frontdesk "):
            if pending is not None:
                found.append(Example(pending, ""))
            pending = line.strip()
        elif pending is not None and line.startswith("      "):
            found.append(Example(pending, line.strip()))
            pending = None
    if pending is not None:
        found.append(Example(pending, ""))
    return found


def all_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
                ) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and sub-command parser, with the words that reach it (``("letters", "check")``)."""
    out = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.extend(all_parsers(sub, (*prefix, name)))
    return out

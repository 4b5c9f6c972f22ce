"""The ``frontdesk`` command. Each sub-command lives in ``frontdesk/commands/<name>.py`` and exposes
``register(subparsers)``; its handler takes ``(args, ctx)`` and returns an exit code.

Errors from :mod:`frontdesk.exceptions` become one line on stderr and their exit code; nothing a user
can cause ends in a traceback. Commands that need no flow never import or start Prefect.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from frontdesk.exceptions import ExitCode, FrontdeskError
from frontdesk.settings import Settings, load_settings

COMMANDS = ["extract", "process", "watch", "serve", "storage", "audit", "patients", "check", "letters", "mail",
            "prefill", "separator", "forms", "eligibility", "claims", "console", "users", "review", "flags", "documents"]


class Context:
    """What every command may need, built lazily so a quick command stays quick."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file

    @cached_property
    def settings(self) -> Settings:
        from frontdesk import filemodes

        settings = load_settings(self.config_file)
        filemodes.lock_down(settings)  # patient data at rest: 0600 / 0700, old installs tightened
        return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description="Front-office document automation for medical practices.")
    parser.add_argument("--config", type=Path, help="settings file (default: config/frontdesk.yaml)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"frontdesk.commands.{name}").register(sub)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # PDF libraries warn about every quirk of a damaged file, and at debug level they log page text
    # (patient data): staff need our one line, and no verbosity may print a page's content.
    for noisy in ("pypdf", "pdfminer", "pdfplumber", "PIL", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", logging.getLevelName(level))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no phoning home from a clinic


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.umask(0o077)  # everything Frontdesk writes is its user's alone (see frontdesk.filemodes)
    configure_logging(args.verbose)
    ctx = Context(args.config)
    try:
        return int(args.handler(args, ctx) or 0)
    except FrontdeskError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("frontdesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return ExitCode.general


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The documented error tree.

Every error a user can meet derives from :class:`FrontdeskError` and carries an exit code, so the CLI maps
errors to exit codes in one place. Messages name files and reasons, never patient data: they end up in
logs and terminals that the practice's IT person may share.
"""

from __future__ import annotations

from pathlib import Path


class ExitCode:
    ok = 0
    general = 1
    bad_input = 2
    config = 3
    template = 4
    storage = 5
    conversion = 6


class FrontdeskError(Exception):
    """Base of every error Frontdesk raises on purpose."""

    exit_code = ExitCode.general


class ConfigError(FrontdeskError):
    """The settings or a config file are wrong; nothing was processed."""

    exit_code = ExitCode.config


class InputFileError(FrontdeskError):
    """A document cannot be read. The message is one line: the file and the reason."""

    exit_code = ExitCode.bad_input

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class EncryptedInputError(InputFileError):
    """A password-protected PDF; staff must send an unprotected copy."""


class TemplateError(FrontdeskError):
    """A letter template cannot be rendered (missing variable, bad syntax, broken .docx)."""

    exit_code = ExitCode.template


class TemplateSecurityError(TemplateError):
    """A template tried to reach Python internals; rendering was refused."""


class StorageError(FrontdeskError):
    """Document storage refused or lost a write; the original stays where it is."""

    exit_code = ExitCode.storage


class TransientStorageError(StorageError):
    """Storage could not be reached; retrying later may succeed."""


class ConversionError(FrontdeskError):
    """LibreOffice could not turn a document into PDF (crash, hang, or no output)."""

    exit_code = ExitCode.conversion


class InboxInUseError(FrontdeskError):
    """Another watcher is already watching this inbox; a second one would process files twice."""

"""Errors of eligibility and claims, in Frontdesk's exception tree (so the CLI maps them to exit codes)."""

from __future__ import annotations

from collections.abc import Sequence

from frontdesk.exceptions import ConfigError, ExitCode, FrontdeskError


class BillingConfigError(ConfigError):
    """The practice's billing settings (NPI, tax ID, address, clearinghouse IDs) are missing or wrong."""


class ClaimRefused(FrontdeskError):
    """A claim or batch cannot go out. Each problem names the claim and the field, never a value."""

    exit_code = ExitCode.bad_input

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; ... and {more} more" if more else "")
        super().__init__(f"claims refused: {text}")

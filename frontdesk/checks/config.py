"""``config/checks.yaml``: the rules, the payer ID formats and the appointment export formats.

Loaded strictly: a misspelt rule name or a regular expression that does not compile would otherwise make
a check silently stop firing, and a worklist that says "ready" when it is not is worse than no worklist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from extractors.names import payer_key
from frontdesk.exceptions import ConfigError

#: Every check the rule engine knows, in the order findings are listed on the worklist.
CHECK_NAMES: tuple[str, ...] = (
    "record_match_unique",
    "intake_on_file",
    "intake_in_review",
    "intake_signed",
    "intake_current",
    "hipaa_acknowledged",
    "primary_insurance_complete",
    "primary_member_id_valid",
    "subscriber_date_of_birth",
    "subscriber_relationship",
    "secondary_insurance_complete",
    "mailing_address",
    "date_of_birth_valid",
    "phone_valid",
    "email_valid",
    "referring_npi_valid",
)

#: Logical appointment columns a CSV format may map.
CSV_FIELDS: frozenset[str] = frozenset({
    "appointment_id", "date", "time", "start", "provider", "provider_npi", "mrn", "patient_name",
    "first_name", "last_name", "date_of_birth", "referring_npi", "status", "visit_type",
})


#: The shipped ``intake_in_review`` rule, for a checks.yaml written before the check existed.
IN_REVIEW_RULE: dict[str, Any] = {
    "code": "intake.in_review", "severity": "warning", "remind": False,
    "message": "We have your new-patient form; our staff are still checking how it was read.",
}


class RuleConfig(BaseModel):
    code: str
    severity: Literal["error", "warning"]
    message: str
    remind: bool = True
    enabled: bool = True

    @field_validator("code")
    @classmethod
    def _code_shape(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*", v):
            raise ValueError("codes are lower-case words joined by dots, e.g. insurance.primary.incomplete")
        return v


class FormRule(RuleConfig):
    """Issue 16: a form besides registration the patient must have signed, at most ``max_age_months``
    before the visit (the date written beside the signature, else the day the form arrived)."""

    form: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    max_age_months: int = Field(12, ge=1, le=120)
    signature: str | None = None  # default: <form>.signature
    signed_on: str | None = None  # default: <form>.date

    @property
    def signature_key(self) -> str:
        return self.signature or f"{self.form}.signature"

    @property
    def date_key(self) -> str:
        return self.signed_on or f"{self.form}.date"


class CsvFormat(BaseModel):
    columns: dict[str, str]
    required: list[str] = Field(default_factory=list)
    date_formats: list[str] = Field(default_factory=lambda: ["%m/%d/%Y", "%Y-%m-%d"])
    time_formats: list[str] = Field(default_factory=lambda: ["%I:%M %p", "%H:%M"])
    datetime_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])
    name_order: Literal["last_first", "first_last"] = "last_first"

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - CSV_FIELDS)
        if unknown:
            raise ValueError(f"unknown appointment field(s) {', '.join(unknown)}; known: {', '.join(sorted(CSV_FIELDS))}")
        return v

    def check_complete(self) -> str | None:
        """A format must give the visit time, the provider and enough to identify the patient."""
        have = set(self.columns)
        missing_required = [r for r in self.required if r not in have]
        if missing_required:
            return f"required field(s) {', '.join(missing_required)} have no column"
        if "start" not in have and not {"date", "time"} <= have:
            return "needs a 'start' column or both 'date' and 'time'"
        if "provider" not in have:
            return "needs a 'provider' column"
        if "patient_name" not in have and not {"first_name", "last_name"} <= have and "mrn" not in have:
            return "needs 'mrn', 'patient_name' or both 'first_name' and 'last_name'"
        return None


class AppointmentsConfig(BaseModel):
    encoding: str = "utf-8"
    skip_statuses: list[str] = Field(default_factory=lambda: ["cancelled", "canceled", "no show", "entered-in-error"])
    mrn_systems: list[str] = Field(default_factory=list)
    csv_formats: dict[str, CsvFormat] = Field(default_factory=dict)


class PayerSpec(BaseModel):
    member_id: str | None = None
    aliases: list[str] = Field(default_factory=list)


class ChecksConfig(BaseModel):
    intake_max_age_months: int = Field(12, ge=1, le=120)
    relationship_min_generation_gap_years: int = Field(12, ge=1, le=40)
    holidays: list[date] = Field(default_factory=list)
    # Business days a reminder needs between its mail batch and the visit (frontdesk/checks/reminders.py).
    reminder_lead_business_days: int = Field(3, ge=1, le=20)
    # A patient with only a secondary coverage on file (its payer and member ID; no primary) passes
    # primary_insurance_complete when true; by default the primary is asked for (frontdesk/checks/rules.py).
    secondary_counts_as_insured: bool = False
    rules: dict[str, RuleConfig]
    # Issue 16: rules that require a form besides registration (their names are the practice's own).
    form_rules: dict[str, FormRule] = Field(default_factory=dict)
    item_words: dict[str, str] = Field(default_factory=dict)
    payers: dict[str, PayerSpec] = Field(default_factory=dict)
    appointments: AppointmentsConfig = Field(default_factory=AppointmentsConfig)

    def rule(self, name: str) -> RuleConfig:
        return self.rules[name]


@dataclass(frozen=True)
class MemberIdFormat:
    """One payer's member ID format: a compiled pattern, or the MBI validator for Medicare."""

    payer: str
    pattern: re.Pattern[str] | None
    mbi: bool = False


class PayerFormats:
    """Look up a payer's member ID format by any spelling of its name or aliases."""

    def __init__(self, formats: dict[str, MemberIdFormat], aliases: dict[str, str]) -> None:
        self._formats = formats
        self._aliases = aliases

    def __len__(self) -> int:
        return len(self._formats)

    def for_payer(self, name: object) -> MemberIdFormat | None:
        if not isinstance(name, str) or not name.strip():
            return None
        canonical = self._aliases.get(payer_key(name))
        return self._formats.get(canonical) if canonical else None


def _member_id_format(source: Path, payer: str, spec: Any) -> MemberIdFormat | None:
    pattern = spec if isinstance(spec, str) else None
    if isinstance(spec, dict):
        for k in ("member_id", "member_id_pattern", "pattern", "member_id_format"):
            if isinstance(spec.get(k), str):
                pattern = spec[k]
                break
    if pattern is None or not pattern.strip():
        return None
    if pattern.strip().lower() in ("mbi", "medicare", "medicare_mbi"):
        return MemberIdFormat(payer, None, mbi=True)
    try:
        return MemberIdFormat(payer, re.compile(pattern))
    except re.error as exc:
        raise ConfigError(f"{source}: payer {payer}: member ID pattern does not compile ({exc.msg})") from None


def _payer_entries(source: Path, data: Any) -> list[tuple[str, Any, list[str]]]:
    """Both shapes a payer list is written in: a mapping name -> spec, or a list of specs with ``name``."""
    if isinstance(data, dict) and "payers" in data:
        data = data["payers"]
    entries: list[tuple[str, Any, list[str]]] = []
    if isinstance(data, dict):
        for name, spec in data.items():
            aliases = spec.get("aliases", []) if isinstance(spec, dict) else []
            entries.append((str(name), spec, [str(a) for a in aliases or []]))
    elif isinstance(data, list):
        for i, spec in enumerate(data, 1):
            if not isinstance(spec, dict) or not spec.get("name"):
                raise ConfigError(f"{source}: payer entry {i}: expected a mapping with a 'name'")
            entries.append((str(spec["name"]), spec, [str(a) for a in spec.get("aliases", []) or []]))
    elif data is not None:
        raise ConfigError(f"{source}: expected a list or mapping of payers")
    return entries


def build_payer_formats(config: ChecksConfig, source: Path, payers_file: Path | None) -> PayerFormats:
    """Payer formats from checks.yaml, overridden payer by payer by ``config/payers.yaml`` when present."""
    formats: dict[str, MemberIdFormat] = {}
    aliases: dict[str, str] = {}
    layers: list[tuple[Path, list[tuple[str, Any, list[str]]]]] = [
        (source, [(n, s.model_dump(), s.aliases) for n, s in config.payers.items()])]
    if payers_file is not None and payers_file.is_file():
        try:
            data = yaml.safe_load(payers_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{payers_file}: cannot read payer list ({exc.__class__.__name__})") from None
        layers.append((payers_file, _payer_entries(payers_file, data)))
    for path, entries in layers:
        for name, spec, alias_list in entries:
            key = payer_key(name)
            fmt = _member_id_format(path, name, spec)
            if fmt is not None:
                formats[key] = fmt
            else:  # listed without a format: its IDs vary, so none is enforced (even one from checks.yaml)
                formats.pop(key, None)
            for spelling in (name, *alias_list):
                aliases[payer_key(spelling)] = key
    return PayerFormats(formats, aliases)


@dataclass(frozen=True)
class LoadedChecks:
    """The parsed checks.yaml plus what is derived from it once (payer patterns)."""

    config: ChecksConfig
    payers: PayerFormats
    source: Path


def load_checks(path: Path, payers_file: Path | None = None) -> LoadedChecks:
    """Parse and check ``checks.yaml``; every problem is a ConfigError naming the file and the setting."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: checks file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read checks file ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    try:
        config = ChecksConfig.model_validate(data)
    except ValidationError as exc:
        from frontdesk.settings import validation_reason

        raise ConfigError(f"{path}: {validation_reason(exc)}") from None
    unknown = sorted(set(config.rules) - set(CHECK_NAMES))
    if unknown:
        raise ConfigError(f"{path}: rules: unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}")
    if "intake_in_review" not in config.rules:  # a practice's file from before this check: its shipped rule
        config.rules["intake_in_review"] = RuleConfig(**IN_REVIEW_RULE)
    missing = [n for n in CHECK_NAMES if n not in config.rules]
    if missing:
        raise ConfigError(f"{path}: rules: no entry for {', '.join(missing)} (use 'enabled: false' to switch one off)")
    codes = [r.code for r in (*config.rules.values(), *config.form_rules.values())]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ConfigError(f"{path}: rules: code(s) used twice: {', '.join(dupes)}")
    for name, fmt in config.appointments.csv_formats.items():
        problem = fmt.check_complete()
        if problem:
            raise ConfigError(f"{path}: appointments.csv_formats.{name}: {problem}")
    try:
        "".encode(config.appointments.encoding)
    except LookupError:
        raise ConfigError(f"{path}: appointments.encoding: unknown encoding") from None
    if payers_file is None:
        payers_file = path.with_name("payers.yaml")
    return LoadedChecks(config, build_payer_formats(config, path, payers_file), path)


@lru_cache(maxsize=8)
def _cached(path: Path, mtime: float, payers: Path | None, payers_mtime: float) -> LoadedChecks:
    return load_checks(path, payers)


def checks_for(path: Path) -> LoadedChecks:
    """Cached by modification time, so a long-running ``frontdesk serve`` sees edits without a restart."""
    path = Path(path)
    payers = path.with_name("payers.yaml")
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return load_checks(path)
    pm = payers.stat().st_mtime if payers.is_file() else 0.0
    return _cached(path, mtime, payers, pm)

"""The completeness rules: one appointment and its matched record in, the findings out.

Each check has a fixed name (the key in ``config/checks.yaml``); what it is called (code), how serious it
is and what staff say to the patient come from config. A check yields at most one finding, and a finding
lists the missing items in plain words rather than one finding per field: the patient hears "we need your
member ID and the policy holder's name", not four separate complaints.

A patient with no intake form on file gets only that finding: every other check reads the form, and the
answer to all of them is "fill in the form".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from frontdesk.billable import (
    as_date,
    check_date_of_birth,
    check_email,
    check_mbi,
    check_npi,
    check_phone,
    check_relationship,
    check_state,
    check_zip,
)
from frontdesk.checks.appointments import Appointment
from frontdesk.checks.config import CHECK_NAMES, LoadedChecks
from frontdesk.checks.matching import Match
from frontdesk.checks.patients import PatientRecord

PRIMARY_REQUIRED = (
    "insurance.primary.payer_name",
    "insurance.primary.member_id",
    "insurance.primary.subscriber_name",
    "insurance.primary.relationship_to_patient",
)
SECONDARY_KEYS = ("insurance.secondary.payer_name", "insurance.secondary.member_id",
                  "insurance.secondary.group_number")
SECONDARY_REQUIRED = ("insurance.secondary.payer_name", "insurance.secondary.member_id")
ADDRESS = ("patient.address.street", "patient.address.city", "patient.address.state", "patient.address.zip")


@dataclass(frozen=True)
class Finding:
    """One gap. ``message`` is what staff read to the patient; it never holds a value from the record."""

    check: str
    code: str
    severity: str
    message: str
    items: tuple[str, ...] = ()
    remind: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "items": list(self.items)}


@dataclass
class Context:
    """What every check may look at."""

    appointment: Appointment
    match: Match
    checks: LoadedChecks
    today: date
    items: list[str] = field(default_factory=list)
    fmt: dict[str, object] = field(default_factory=dict)

    @property
    def record(self) -> PatientRecord:
        assert self.match.record is not None
        return self.match.record

    @property
    def self_pay(self) -> bool:
        return self.record.value("insurance.self_pay") is True

    @property
    def only_secondary(self) -> bool:
        """No primary coverage on file (no payer, no member ID), and a secondary one with both."""
        return (all(self.blank(k) for k in ("insurance.primary.payer_name", "insurance.primary.member_id"))
                and not any(self.blank(k) for k in SECONDARY_REQUIRED))

    def words(self, key: str) -> str:
        return self.checks.config.item_words.get(key, key.rsplit(".", 1)[-1].replace("_", " "))

    def blank(self, key: str) -> bool:
        v = self.record.value(key)
        return v is None or v is False or (isinstance(v, str) and not v.strip())


def add_months(d: date, months: int) -> date:
    """Calendar months; the 31st becomes the last day of a shorter month."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise ValueError("unreachable")


# Each check returns True when the gap is present; it may fill ctx.items and ctx.fmt for the message.
Check = Callable[[Context], bool]


def _record_match_unique(ctx: Context) -> bool:
    return bool(ctx.match.ambiguous)


def _intake_on_file(ctx: Context) -> bool:
    return not ctx.match.ambiguous and (ctx.match.record is None or ctx.match.record.intake is None)


def _intake_in_review(ctx: Context) -> bool:
    """Intake received, in review: the form is here but waits for a person, so staff do not ask the
    patient for a form he has filled in."""
    return ctx.record.intake is not None and ctx.record.intake.in_review


def _intake_signed(ctx: Context) -> bool:
    return not ctx.record.intake.signed  # type: ignore[union-attr]


def _intake_current(ctx: Context) -> bool:
    months = ctx.checks.config.intake_max_age_months
    ctx.fmt["months"] = months
    intake = ctx.record.intake
    assert intake is not None
    return intake.dated < add_months(ctx.appointment.start.date(), -months)


def _hipaa_acknowledged(ctx: Context) -> bool:
    return not ctx.record.intake.hipaa_acknowledged  # type: ignore[union-attr]


def _primary_insurance_complete(ctx: Context) -> bool:
    if ctx.self_pay:
        return False
    if ctx.checks.config.secondary_counts_as_insured and ctx.only_secondary:
        return False
    ctx.items = [ctx.words(k) for k in PRIMARY_REQUIRED if ctx.blank(k)]
    return bool(ctx.items)


def _primary_member_id_valid(ctx: Context) -> bool:
    if ctx.self_pay or ctx.blank("insurance.primary.member_id"):
        return False
    fmt = ctx.checks.payers.for_payer(ctx.record.value("insurance.primary.payer_name"))
    if fmt is None:
        return False  # an unlisted payer: no format to hold the ID to
    member_id = "".join(ctx.record.text("insurance.primary.member_id").replace("-", " ").split()).upper()
    if fmt.mbi:
        return check_mbi(member_id) is not None
    assert fmt.pattern is not None
    return fmt.pattern.fullmatch(member_id) is None


def _relationship(ctx: Context) -> str:
    return ctx.record.text("insurance.primary.relationship_to_patient").lower()


def _subscriber_date_of_birth(ctx: Context) -> bool:
    rel = _relationship(ctx)
    if ctx.self_pay or not rel or rel == "self":
        return False
    return check_date_of_birth(ctx.record.value("insurance.primary.subscriber_date_of_birth"),
                               today=ctx.today) is not None


def _subscriber_relationship(ctx: Context) -> bool:
    """Only between two valid birth dates: a wrong date is its own finding, and comparing it would
    blame the relationship for a typo in the date."""
    if ctx.self_pay:
        return False
    dates = (ctx.record.value("patient.date_of_birth"), ctx.record.value("insurance.primary.subscriber_date_of_birth"))
    if any(check_date_of_birth(d, today=ctx.today) is not None for d in dates):
        return False
    return check_relationship(
        _relationship(ctx), ctx.record.value("patient.date_of_birth"),
        ctx.record.value("insurance.primary.subscriber_date_of_birth"),
        min_generation_gap=ctx.checks.config.relationship_min_generation_gap_years, today=ctx.today) is not None


def _secondary_insurance_complete(ctx: Context) -> bool:
    if ctx.self_pay or all(ctx.blank(k) for k in SECONDARY_KEYS):
        return False
    ctx.items = [ctx.words(k) for k in SECONDARY_REQUIRED if ctx.blank(k)]
    return bool(ctx.items)


def _mailing_address(ctx: Context) -> bool:
    street, city, state, zip_code = ADDRESS
    bad = [k for k in (street, city) if ctx.blank(k)]
    if check_state(ctx.record.value(state)) is not None:
        bad.append(state)
    if check_zip(ctx.record.value(zip_code)) is not None:
        bad.append(zip_code)
    ctx.items = [ctx.words(k) for k in bad]
    return bool(bad)


def _date_of_birth_valid(ctx: Context) -> bool:
    return check_date_of_birth(ctx.record.value("patient.date_of_birth"), today=ctx.today) is not None


def _phone_valid(ctx: Context) -> bool:
    return check_phone(ctx.record.value("patient.phone")) is not None


def _email_valid(ctx: Context) -> bool:
    return not ctx.blank("patient.email") and check_email(ctx.record.value("patient.email")) is not None


def _referring_npi_valid(ctx: Context) -> bool:
    npi = ctx.appointment.referring_npi
    return bool(npi) and check_npi(npi) is not None


CHECKS: dict[str, Check] = {
    "record_match_unique": _record_match_unique,
    "intake_on_file": _intake_on_file,
    "intake_in_review": _intake_in_review,
    "intake_signed": _intake_signed,
    "intake_current": _intake_current,
    "hipaa_acknowledged": _hipaa_acknowledged,
    "primary_insurance_complete": _primary_insurance_complete,
    "primary_member_id_valid": _primary_member_id_valid,
    "subscriber_date_of_birth": _subscriber_date_of_birth,
    "subscriber_relationship": _subscriber_relationship,
    "secondary_insurance_complete": _secondary_insurance_complete,
    "mailing_address": _mailing_address,
    "date_of_birth_valid": _date_of_birth_valid,
    "phone_valid": _phone_valid,
    "email_valid": _email_valid,
    "referring_npi_valid": _referring_npi_valid,
}
assert tuple(CHECKS) == CHECK_NAMES, "rule engine and config know different checks"

#: Checks that need nothing but the appointment (and the match); the rest read the intake form.
APPOINTMENT_CHECKS = frozenset({"record_match_unique", "intake_on_file", "referring_npi_valid"})


def join_items(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c': how the items read inside a sentence."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def evaluate(appointment: Appointment, match: Match, checks: LoadedChecks, *, today: date) -> list[Finding]:
    """Every enabled check, in config order of CHECK_NAMES, against one appointment."""
    has_form = match.record is not None and match.record.intake is not None
    findings: list[Finding] = []
    for name in CHECK_NAMES:
        rule = checks.config.rules[name]
        if not rule.enabled or (name not in APPOINTMENT_CHECKS and not has_form):
            continue
        ctx = Context(appointment, match, checks, today)
        if not CHECKS[name](ctx):
            continue
        message = rule.message.format_map(_Defaults(items=join_items(ctx.items), **ctx.fmt))
        findings.append(Finding(name, rule.code, rule.severity, message, tuple(ctx.items), rule.remind))
    if has_form:
        findings.extend(form_findings(appointment, match, checks))
    return findings


def form_findings(appointment: Appointment, match: Match, checks: LoadedChecks) -> list[Finding]:
    """Issue 16: the form rules of checks.yaml. A patient whose latest signed copy of the form is older
    than the rule's months before the visit, or who has none, gets the rule's finding."""
    out: list[Finding] = []
    record = match.record
    if record is None:
        return out
    for name, rule in checks.config.form_rules.items():
        if not rule.enabled:
            continue
        signed = record.signed_forms.get(rule.form)
        if signed is not None and signed >= add_months(appointment.start.date(), -rule.max_age_months):
            continue
        message = rule.message.format_map(_Defaults(months=rule.max_age_months, form=rule.form, items=""))
        out.append(Finding(name, rule.code, rule.severity, message, (), rule.remind))
    return out


class _Defaults(dict[str, object]):
    """Unknown placeholders in a practice's message stay visible instead of raising mid-run."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


__all__ = ["CHECKS", "Finding", "add_months", "as_date", "evaluate", "form_findings", "join_items"]

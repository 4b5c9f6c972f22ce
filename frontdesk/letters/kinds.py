"""The kinds of mail Frontdesk writes: which template each uses, whom it is addressed to, and sample data.

A letter row in the records carries its kind (``Letter.kind``) and the data it is rendered with
(``Letter.context``); the kind decides the template ``templates/letters/<kind>.docx``. The sample data is
what ``frontdesk letters check`` renders every template with, so a template edited in Word is tried on
every variable before a real batch depends on it. Samples are fictional and deliberately awkward
(characters XML must escape, long names, three-line addresses).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from frontdesk.rendering import Picture
from frontdesk.settings import Settings

STATEMENT_KIND = "patient_statement"
INVOICE_KIND = "self_pay_invoice"


@dataclass(frozen=True)
class Kind:
    """One kind of mail piece. ``recipient`` names the context object with ``full_name`` and
    ``address_lines`` (the patient for letters, the guarantor for a statement)."""

    name: str
    description: str
    recipient: str = "patient"

    @property
    def template_name(self) -> str:
        return f"{self.name}.docx"


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("missing_insurance", "asks a new patient for the insurance details their forms lacked"),
        Kind("incomplete_intake", "asks for answers a new-patient form left blank or unreadable"),
        Kind("appointment_reminder", "reminds of a visit, with the checklist of what to bring"),
        Kind("welcome", "welcomes a new patient: what to expect and what to bring"),
        Kind(STATEMENT_KIND, "the bill: service lines, aging, due date and a remittance stub", "guarantor"),
        Kind(INVOICE_KIND, "an itemised invoice for a self-pay visit: service lines, total, due date and a payment stub"),
    )
}


def kind_named(name: str) -> Kind:
    """The kind of that name; KeyError for a kind Frontdesk has no template for."""
    return KINDS[name]


def kind_for_template(template: Path) -> str:
    return Path(template).stem


def practice_block(settings: Settings) -> dict[str, Any]:
    """The letterhead data every template prints: name, address, phone."""
    practice = settings.practice
    return {"name": practice.name, "address_lines": list(practice.address_lines), "phone": practice.phone}


def logo_picture(settings: Settings) -> Picture | None:
    """The practice's configured logo, or None to keep the placeholder built into the templates."""
    logo = settings.practice.logo
    return Picture(Path(logo), height_mm=15.0, max_width_mm=70.0) if logo else None


def render_context(stored: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """What a template is rendered with: the stored letter data plus the configured logo.

    The logo is added here rather than stored, so the records keep plain JSON and a practice that
    changes its logo gets it on every letter rendered from then on.
    """
    context = copy.deepcopy(dict(stored))
    logo = logo_picture(settings)
    practice = context.get("practice")
    if logo is not None and isinstance(practice, Mapping):
        context["practice"] = {**practice, "logo": logo}
    return context


def letter_date(day: date) -> str:
    """Dates as a patient reads them: "November 29, 2026"."""
    return f"{day:%B} {day.day}, {day:%Y}"


_SAMPLE_PRACTICE = {
    "name": "Harbor & Main <Family> Medicine",
    "address_lines": ["1200 Harbor Street, Suite 210", "Springfield, IL 62704"],
    "phone": "(217) 555-0142",
}
_SAMPLE_PATIENT = {
    "full_name": "Dana O'Connor-Núñez & \"Jr\"",
    "first_name": "Dana",
    "address_lines": ["48 Linden Avenue", "Apt <3B>", "Springfield, IL 62702-1234"],
}


def sample_context(kind: str) -> dict[str, Any]:
    """Fictional data with every variable the kind's template may use."""
    common: dict[str, Any] = {
        "practice": copy.deepcopy(_SAMPLE_PRACTICE),
        "letter_date": "November 29, 2026",
        "patient": copy.deepcopy(_SAMPLE_PATIENT),
        "reference": "DOC-3A9F2C81D04B77E1",
    }
    if kind == "missing_insurance":
        return {**common, "missing_items": ["Member ID", "Name of the insurance company",
                                            "Name of the policy holder"]}
    if kind == "incomplete_intake":
        return {**common, "missing_items": ["Phone", "Date of birth", "Patient signature"]}
    if kind == "appointment_reminder":
        return {
            **common,
            "appointment": {"date": "Tuesday, December 8, 2026", "time": "9:30 AM",
                            "provider": "Dr. Amara Okafor & Team", "start": "2026-12-08T09:30"},
            "missing_items": ["Please sign that you received our Notice of Privacy Practices.",
                              "We need more about your insurance: Member ID. Please bring your insurance card."],
            "gaps": ["consent.hipaa", "insurance.incomplete"],
        }
    if kind == "welcome":
        return common
    if kind == STATEMENT_KIND:
        return sample_statement_context()
    if kind == INVOICE_KIND:
        return sample_invoice_context()
    raise KeyError(kind)


def sample_invoice_context() -> dict[str, Any]:
    line = {"date": "11/20/2026", "code": "99203", "description": "Office visit, new patient <30 min> & exam",
            "units": "1", "amount": "$165.00"}
    return {
        "practice": copy.deepcopy(_SAMPLE_PRACTICE),
        "remit_to": {"name": "Harbor & Main <Family> Medicine", "address_lines": ["PO Box 4410",
                                                                                  "Springfield, IL 62708"]},
        "patient": copy.deepcopy(_SAMPLE_PATIENT),
        "letter_date": "November 29, 2026",
        "invoice_date": "November 29, 2026",
        "due_date": "December 29, 2026",
        "visit_date": "November 20, 2026",
        "visit": "V-20261120-0031",
        "reference": "LTR-5D2E9A01B3C4",
        "lines": [line, {**line, "code": "36415", "description": "Drawing blood", "amount": "$12.00"},
                  {**line, "code": "85025", "description": "Complete blood count", "units": "2",
                   "amount": "$56.00"}],
        "total": "$233.00",
        "amount_due": "$233.00",
        "payment_methods": ["Online at https://pay.example.org (card or bank account)",
                            "By phone at (217) 555-0142",
                            "By mail: send a check with the top part of this invoice"],
    }


def sample_statement_context() -> dict[str, Any]:
    line = {"date": "09/14/2026", "patient": "Dana O'Connor-Núñez", "code": "99214",
            "description": "Office visit, established patient <25 min> & review", "charge": "$180.00",
            "insurance_paid": "$120.00", "adjustment": "$20.00", "patient_paid": "$0.00", "balance": "$40.00"}
    return {
        "practice": copy.deepcopy(_SAMPLE_PRACTICE),
        "remit_to": {"name": "Harbor & Main <Family> Medicine", "address_lines": ["PO Box 4410",
                                                                                  "Springfield, IL 62708"]},
        "guarantor": copy.deepcopy(_SAMPLE_PATIENT),
        "account": "A-100482",
        "statement_date": "November 29, 2026",
        "due_date": "December 29, 2026",
        "reference": "STM-5D2E9A01B3C4",
        "lines": [line, {**line, "date": "10/02/2026", "code": "80053", "description": "Blood test panel",
                         "charge": "$45.00", "insurance_paid": "$0.00", "adjustment": "$0.00",
                         "balance": "$45.00"}],
        "totals": {"charges": "$225.00", "insurance_paid": "$120.00", "adjustments": "$20.00",
                   "patient_paid": "$0.00", "balance": "$85.00"},
        "aging": {"current": "$45.00", "days_31_60": "$0.00", "days_61_90": "$40.00", "over_90": "$0.00"},
        "amount_due": "$85.00",
        "payment_methods": ["Online at https://pay.example.org (card or bank account)",
                            "By phone at (217) 555-0142",
                            "By mail: send a check with the top part of this statement"],
    }


__all__ = ["KINDS", "STATEMENT_KIND", "Kind", "kind_for_template", "kind_named", "letter_date", "logo_picture",
           "practice_block", "render_context", "sample_context", "sample_statement_context", "INVOICE_KIND",
           "sample_invoice_context"]

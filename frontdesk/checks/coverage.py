"""The latest eligibility answer per patient, as the pre-visit checks read it (no X12 here, only the
records database), so the checks need nothing of the claims package but this."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from frontdesk.checks.patients import CoverageOnFile
from frontdesk.db.claims_models import EligibilityResult


def coverage_on_file(s: Any, patient_ids: Sequence[str]) -> dict[str, CoverageOnFile]:
    """The latest eligibility answer per patient: what the worklist shows."""
    if not patient_ids:
        return {}
    out: dict[str, CoverageOnFile] = {}
    rows = s.scalars(select(EligibilityResult).where(EligibilityResult.patient_id.in_(sorted(set(patient_ids))))
                     .order_by(EligibilityResult.checked_on, EligibilityResult.id))
    for r in rows:  # ascending: the newest wins
        out[r.patient_id] = CoverageOnFile(
            status=r.status, checked_on=r.checked_on, plan_name=r.plan_name,
            copay=Decimal(r.copay_cents) / 100 if r.copay_cents is not None else None,
            deductible_remaining=(Decimal(r.deductible_remaining_cents) / 100
                                  if r.deductible_remaining_cents is not None else None),
            reasons=tuple(r.reasons or ()))
    return out

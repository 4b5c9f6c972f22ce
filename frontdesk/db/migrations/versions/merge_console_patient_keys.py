"""Join the two lines of migrations that landed side by side: the claims and console tables
(issue19_claims, issue18_console) and the patient keys that fold every letter (patient_keys_fold_letters)
both follow issue3_stacks. Neither touches what the other does; a database at either head upgrades to
this one, and `frontdesk` again has one head to compare a database with.

Revision ID: merge_console_patient_keys
Revises: issue18_console, patient_keys_fold_letters
Create Date: 2026-12-05 07:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "merge_console_patient_keys"
down_revision: str | Sequence[str] | None = ("issue18_console", "patient_keys_fold_letters")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # a join only: both parents did their work


def downgrade() -> None:
    pass

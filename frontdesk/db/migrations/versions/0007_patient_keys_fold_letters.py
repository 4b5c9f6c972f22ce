"""Patient keys fold every letter: "Michał" and "Michal" are one key (frontdesk.identity.fold).

Before, the key kept letters that Unicode does not decompose (ł ø đ ß æ œ ı ...), so a form signed
"Michał Nowak" and a card printed "MICHAL NOWAK" named two patients. Every key is recomputed from the
name and date of birth on the record; downgrade has nothing to undo (the old keys were a lossy fold).

Revision ID: patient_keys_fold_letters
Revises: issue18_console
Create Date: 2026-12-05 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from frontdesk.identity import match_key

revision: str = 'patient_keys_fold_letters'
down_revision: str | Sequence[str] | None = 'issue18_console'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    patients = sa.table('patients', sa.column('id', sa.String), sa.column('first_name', sa.String),
                        sa.column('last_name', sa.String), sa.column('date_of_birth', sa.Date),
                        sa.column('match_key', sa.String))
    rows = bind.execute(sa.select(patients.c.id, patients.c.first_name, patients.c.last_name,
                                  patients.c.date_of_birth, patients.c.match_key)).all()
    for pid, first, last, dob, key in rows:
        new = match_key(first, last, dob)
        if new != key:
            bind.execute(patients.update().where(patients.c.id == pid).values(match_key=new))


def downgrade() -> None:
    pass

"""States as enums with their transitions in one place (frontdesk/states.py): what the records allow, and a
change they do not allow is refused instead of silently rewriting history (a mailed letter voided, a
complete document sent back to pending, a resolved flag resolved again by another document)."""

from __future__ import annotations

import pytest

from frontdesk.db.models import (
    DOCUMENT_STATES,
    FLAG_STATES,
    LETTER_STATES,
    MAIL_BATCH_STATES,
    Document,
    FlagRow,
    Letter,
)
from frontdesk.states import (
    TRANSITIONS,
    BatchStatus,
    DocumentState,
    FlagStatus,
    PieceStatus,
    TransitionError,
    advance,
)


def test_the_enums_are_the_states_the_database_stores() -> None:
    assert tuple(DocumentState) == DOCUMENT_STATES and tuple(FlagStatus) == FLAG_STATES
    assert tuple(PieceStatus) == LETTER_STATES and tuple(BatchStatus) == MAIL_BATCH_STATES
    for kind, table in TRANSITIONS.items():
        assert set(table) == set(kind)  # every state says where it may go


def test_a_letter_goes_pending_queued_mailed_and_is_stored_as_plain_text() -> None:
    letter = Letter(kind="missing_insurance", status="pending")
    advance(letter, PieceStatus.QUEUED)
    advance(letter, PieceStatus.MAILED)
    assert letter.status == "mailed" and type(letter.status) is str


@pytest.mark.parametrize(("row", "attr", "new"), [
    (Letter(kind="missing_insurance", status="mailed"), "status", PieceStatus.VOID),  # it went out
    (Letter(kind="missing_insurance", status="void"), "status", PieceStatus.QUEUED),  # never mailed again
    (Document(id="doc-1", state="complete"), "state", DocumentState.PENDING),
    (FlagRow(code="missing", severity="error", status="resolved"), "status", FlagStatus.DISMISSED),
])
def test_a_transition_that_is_not_allowed_raises_and_changes_nothing(row: object, attr: str, new: object) -> None:
    before = getattr(row, attr)
    with pytest.raises(TransitionError, match=f"cannot go from {before} to {new}"):
        advance(row, new, attr=attr)  # type: ignore[type-var]
    assert getattr(row, attr) == before


def test_staying_in_a_state_is_allowed() -> None:
    doc = Document(id="doc-2", state="complete")
    advance(doc, DocumentState.COMPLETE, attr="state")
    assert doc.state == "complete"

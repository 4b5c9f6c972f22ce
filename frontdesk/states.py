"""The states a document, a flag, a mail piece and a mail batch go through, and the only ways between them.

The values are what the records database stores (StrEnum: a state *is* its string), so rows, JSON and
queries are unchanged. Every change of state goes through :func:`advance`, which refuses a transition not
listed here: a letter already mailed cannot be voided, a resolved flag cannot be resolved again by
another document, a complete document cannot go back to pending. Such a refusal is a bug in the caller,
never a user's mistake, so it is loud.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from frontdesk.exceptions import FrontdeskError


class DocumentState(StrEnum):
    """A document in the records: reserved before storage is touched, complete once filed (and its
    letters filed, when it needs any)."""

    PENDING = "pending"
    AWAITING_LETTERS = "awaiting_letters"
    COMPLETE = "complete"


class FlagStatus(StrEnum):
    """A flag for a person: open until answered (by a person, a card or a later form) or dismissed."""

    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class PieceStatus(StrEnum):
    """A letter or a statement on its way to the patient: queued in a mail batch, mailed with it; void
    when it must not go out (the gap it asked about was filled, the visit was cancelled)."""

    PENDING = "pending"
    QUEUED = "queued"
    MAILED = "mailed"
    VOID = "void"


class BatchStatus(StrEnum):
    """A mail batch: built (open), handed to the printer or mail house (submitted), mailed; or void."""

    OPEN = "open"
    SUBMITTED = "submitted"
    MAILED = "mailed"
    VOID = "void"


State = DocumentState | FlagStatus | PieceStatus | BatchStatus

#: The allowed transitions, one place for all of them. Staying in a state is always allowed.
TRANSITIONS: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    DocumentState: {
        DocumentState.PENDING: frozenset({DocumentState.AWAITING_LETTERS, DocumentState.COMPLETE}),
        DocumentState.AWAITING_LETTERS: frozenset({DocumentState.COMPLETE}),
        DocumentState.COMPLETE: frozenset(),
    },
    FlagStatus: {
        FlagStatus.OPEN: frozenset({FlagStatus.RESOLVED, FlagStatus.DISMISSED}),
        FlagStatus.RESOLVED: frozenset(),
        FlagStatus.DISMISSED: frozenset(),
    },
    PieceStatus: {
        PieceStatus.PENDING: frozenset({PieceStatus.QUEUED, PieceStatus.VOID}),
        # Back to pending when its batch is voided before mailing; void when withdrawn from the batch.
        PieceStatus.QUEUED: frozenset({PieceStatus.PENDING, PieceStatus.MAILED, PieceStatus.VOID}),
        PieceStatus.MAILED: frozenset(),
        PieceStatus.VOID: frozenset(),
    },
    BatchStatus: {
        BatchStatus.OPEN: frozenset({BatchStatus.SUBMITTED, BatchStatus.VOID}),
        BatchStatus.SUBMITTED: frozenset({BatchStatus.MAILED, BatchStatus.VOID}),
        BatchStatus.MAILED: frozenset(),
        BatchStatus.VOID: frozenset(),
    },
}


class TransitionError(FrontdeskError):
    """A change of state that is not allowed (see :data:`TRANSITIONS`). Names the kind and the states,
    never the row's content."""


S = TypeVar("S", bound=StrEnum)


def allowed(old: StrEnum, new: StrEnum) -> bool:
    return old == new or new in TRANSITIONS[type(new)][old]


def advance(row: Any, new: S, *, attr: str = "status") -> S:
    """Set ``row.<attr>`` to ``new`` if the current state allows it; TransitionError if not."""
    kind = type(new)
    current = getattr(row, attr)
    old = kind(current) if current is not None else None
    if old is not None and not allowed(old, new):
        raise TransitionError(f"{type(row).__name__} {getattr(row, 'id', '')}: {attr} cannot go from "
                              f"{old.value} to {new.value}".replace("  ", " "))
    setattr(row, attr, new.value)  # the plain string: every database driver stores it as it is
    return new

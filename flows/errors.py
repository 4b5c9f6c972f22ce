"""Exceptions that leave a task carry no patient data.

Why: Prefect stores a failed task's exception message in its database (state message, shown in the UI),
logs its traceback through the API, and pickles the exception into result storage even when results are
not persisted. A database error's message quotes the values it was given; a parser's may quote the
document. So every task body runs inside :func:`phi_free`: Frontdesk's own errors (whose messages are
written to be safe: ids, claim names and reasons) pass unchanged; anything else is replaced by a
:class:`TaskError` naming only the task and the exception's class, raised ``from None`` so neither the
original message nor its chain travels with it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from frontdesk.exceptions import FrontdeskError, StorageError

log = logging.getLogger("frontdesk.flows")

P = ParamSpec("P")
R = TypeVar("R")


class TaskError(FrontdeskError):
    """A task failed for a reason that is not Frontdesk's own; the message says where, never what."""


class TransientDatabaseError(TaskError):
    """The records database refused or dropped a write (busy, restarted): a retry may succeed."""


def safe_error(exc: BaseException, where: str) -> BaseException:
    """``exc`` itself when its message is written to be safe, else a stand-in without its message."""
    if isinstance(exc, FrontdeskError | KeyboardInterrupt | SystemExit):
        return exc
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        DBAPIError = OperationalError = ()  # type: ignore[assignment,misc]
    name = exc.__class__.__name__
    if isinstance(exc, OperationalError):
        return TransientDatabaseError(f"{where}: the records database refused the work ({name}); it will be retried")
    if isinstance(exc, DBAPIError):
        return TaskError(f"{where}: the records database refused a write ({name})")
    return TaskError(f"{where}: failed ({name})")


def phi_free(where: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a task body: exceptions leave it without patient data (see the module docstring)."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                safe = safe_error(exc, where)
                if safe is exc:
                    raise
                log.warning("%s", safe)
                raise safe from None

        return run

    return wrap


def is_transient(exc: BaseException | None) -> bool:
    """What a task may retry: storage that refused a write, a database that was busy."""
    return isinstance(exc, StorageError | TransientDatabaseError)

"""Progress on long work: a bar with counts and time left at a terminal, plain lines in a log, nothing for
a script that reads ``--json``.

Why a sink and not a return value: the work that takes long (reading a batch of documents, converting
letters, checking a day) runs deep inside flows and the core, sometimes in Prefect's worker threads. The
command that a person started decides how progress is shown (:func:`shown`); the work only says "one more
done" (:func:`step`). With no command listening (a deployed flow, a test) a step costs nothing and prints
nothing. Progress lines carry counts and the kind of work only: never a file name or a patient's name.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol


class Reporter(Protocol):
    """Where steps are shown: a terminal bar, plain lines, or nowhere."""

    def begin(self, what: str, total: int | None) -> int: ...

    def advance(self, handle: int, n: int) -> None: ...

    def end(self, handle: int) -> None: ...


class Silent:
    """Nothing shown (``--json``, or no command listening)."""

    def begin(self, what: str, total: int | None) -> int:
        return 0

    def advance(self, handle: int, n: int) -> None:
        pass

    def end(self, handle: int) -> None:
        pass


class PlainLines:
    """One line per tenth of the work and one at the end (``letters: 12/40``), for logs and pipes: a
    bar redrawn with carriage returns would fill a log file with noise."""

    def __init__(self, stream: IO[str], *, clock: Any = time.monotonic) -> None:
        self.stream, self.clock = stream, clock
        self._steps: dict[int, list[Any]] = {}  # handle -> [what, total, done, last tenth shown, started]
        self._next = 1

    def begin(self, what: str, total: int | None) -> int:
        handle, self._next = self._next, self._next + 1
        self._steps[handle] = [what, total, 0, 0, self.clock()]
        return handle

    def advance(self, handle: int, n: int) -> None:
        st = self._steps.get(handle)
        if st is None:
            return
        st[2] += n
        total, done, shown_tenth = st[1], st[2], st[3]
        if total:
            tenth = min(10, done * 10 // total)
            if tenth > shown_tenth and done < total:
                st[3] = tenth
                self._line(st)

    def end(self, handle: int) -> None:
        st = self._steps.pop(handle, None)
        if st is not None and (st[2] or st[1]):
            self._line(st, final=True)

    def _line(self, st: list[Any], *, final: bool = False) -> None:
        what, total, done, started = st[0], st[1], st[2], st[4]
        count = f"{done}/{total}" if total else str(done)
        tail = f" in {self.clock() - started:.0f} s" if final else ""
        self.stream.write(f"{what}: {count}{' done' if final else ''}{tail}\n")
        self.stream.flush()


class TerminalBar:
    """rich's progress bar (description, bar, done/total, time left) on the terminal; it disappears
    when the work is done, so the command's summary is what stays on screen."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("eta"), TimeRemainingColumn(), TimeElapsedColumn(),
                                  console=Console(file=stream, force_terminal=True), transient=True)
        self._progress.start()

    def begin(self, what: str, total: int | None) -> int:
        return int(self._progress.add_task(what, total=total))

    def advance(self, handle: int, n: int) -> None:
        from rich.progress import TaskID

        self._progress.advance(TaskID(handle), n)

    def end(self, handle: int) -> None:
        from rich.progress import TaskID

        self._progress.refresh()  # the last count is drawn even when the work took less than a redraw
        self._progress.remove_task(TaskID(handle))

    def close(self) -> None:
        self._progress.stop()


_lock = threading.RLock()
_reporter: Reporter = Silent()


def reporter_for(stream: IO[str], *, json_output: bool) -> Reporter:
    """A bar when ``stream`` is a terminal, plain lines when it is not, nothing with ``--json``."""
    if json_output:
        return Silent()
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return TerminalBar(stream)
    return PlainLines(stream)


@contextmanager
def shown(*, json_output: bool = False, stream: IO[str] | None = None) -> Iterator[Reporter]:
    """Show the progress of everything run inside (a command's ``run``), on standard error by default,
    so standard output keeps only the command's result."""
    global _reporter
    reporter = reporter_for(stream if stream is not None else sys.stderr, json_output=json_output)
    with _lock:
        previous, _reporter = _reporter, reporter
    try:
        yield reporter
    finally:
        with _lock:
            _reporter = previous
        close = getattr(reporter, "close", None)
        if close is not None:
            close()


class Step:
    """One piece of work with a count: ``step.advance()`` after each item."""

    def __init__(self, reporter: Reporter, handle: int) -> None:
        self._reporter, self._handle = reporter, handle

    def advance(self, n: int = 1) -> None:
        with _lock:
            self._reporter.advance(self._handle, n)


@contextmanager
def step(what: str, total: int | None) -> Iterator[Step]:
    """A counted piece of work (``what`` names its kind: "reading documents", never a file or a person)."""
    with _lock:
        reporter = _reporter
        handle = reporter.begin(what, total)
    try:
        yield Step(reporter, handle)
    finally:
        with _lock:
            reporter.end(handle)

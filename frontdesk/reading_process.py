"""Documents read in processes of their own: ``python -m frontdesk.reading_process``.

Why a process per document: a hostile file can hang a parser in C code, allocate gigabytes, or crash the
interpreter. Only a process can be stopped from outside in every case (a thread cannot be killed, and
SIGALRM works only in a main thread, so it did nothing under Dask or a thread pool). The parent
(:class:`frontdesk.reading_server.ReadingServer`) kills a document's process when it passes the wall-clock limit;
the address-space limit (RLIMIT_AS) set in it makes a bloated read fail inside it. Either way only that
document fails, with its reason.

Why a server that forks: importing the readers and loading the form templates costs most of a second;
done once here, each document's process is a ``fork`` of this one (milliseconds) that reads one file
and exits. This process itself never opens a document.

Protocol, over this process's stdin and stdout: the parent first sends one length-prefixed pickle (the
settings; the parent is trusted), and this process answers ``ready``. Then for each document the parent
sends a length-prefixed JSON job ``{"path", "answer"}``; this process forks, answers ``pid <n>``, and
when the child has ended ``exit <code>``. The child writes its answer as JSON to the ``answer`` file
(plain data: the parent never unpickles what code that handled a hostile file wrote). stderr is
discarded by the parent: a reader's message may quote the document.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import struct
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO


def _frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return stream.read(size)


def _say(out: BinaryIO, line: str) -> None:
    out.write(line.encode() + b"\n")
    out.flush()


def _limit_memory(mb: int) -> None:
    if mb > 0:
        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _limit_pixels(megapixels: float) -> None:
    """Pillow refuses (or warns about, which the readers treat as refusal) images over the practice's
    pixel limit when it reads their header, before decoding: not only over its own default of 89 MP."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = int(megapixels * 1e6)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(value)
    return value


def _read_one(reader: Any, job: dict[str, Any], setup: dict[str, Any]) -> None:
    """In the forked child: read one document, write the answer, never return."""
    code = 0
    try:
        os.setsid()  # its own process group: the parent kills it and its tesseracts together
        _limit_memory(int(setup["memory_mb"]))
        from extractors import UnreadableDocument, faults

        path = Path(job["path"])
        try:
            faults.apply(path)
            answer: dict[str, Any] = {"documents": [_plain(asdict(d)) for d in reader.read_here(path)]}
        except UnreadableDocument as exc:
            answer = {"unreadable": exc.reason, "encrypted": exc.encrypted}
        except MemoryError:
            answer = {"unreadable": f"needed more than {setup['memory_mb']} MB to read"}
        except Exception as exc:  # the class name only: a message may quote the document
            answer = {"unreadable": f"the reader failed ({exc.__class__.__name__}); the file may be damaged"}
        with open(job["answer"], "w", encoding="utf-8") as fh:
            json.dump(answer, fh)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _warm(reader: Any) -> None:
    """Read the practice's own blank forms once here, so the lazy imports and caches of the PDF readers
    are in place before the first fork instead of being loaded again in every document's process."""
    from extractors import UnreadableDocument

    for folder in reader.forms_dirs:
        for form in sorted(Path(folder).glob("*.pdf"))[:2]:
            try:
                reader.read_here(form)
            except (UnreadableDocument, Exception):  # noqa: S112 - warming only
                continue


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints of any library go to stderr, never into the protocol
    stdin = sys.stdin.buffer
    raw = _frame(stdin)
    if raw is None:
        return 0
    setup = pickle.loads(raw)
    from extractors import ocr
    from frontdesk.extraction import Reader

    ocr.set_width(int(setup.get("ocr_width") or 1))
    _limit_pixels(setup["settings"].extraction.max_image_megapixels)
    reader = Reader(setup["settings"], setup.get("extra_forms_dirs"))
    _ = reader.registry, reader.vocabulary, reader.scan_options  # loaded once, shared by every fork
    _warm(reader)
    _say(out, "ready")
    while (raw := _frame(stdin)) is not None:
        job = json.loads(raw)
        pid = os.fork()
        if pid == 0:
            _read_one(reader, job, setup)
        _say(out, f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        _say(out, f"exit {os.waitstatus_to_exitcode(status)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

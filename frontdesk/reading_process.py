"""One document read in a process of its own: ``python -m frontdesk.reading_process``.

Why a process per document: a hostile file can hang a parser in C code, allocate gigabytes, or crash the
interpreter. Only a process can be stopped from outside in every case (a thread cannot be killed, and
SIGALRM works only in a main thread, so it did nothing under Dask or a thread pool). The parent
(:func:`frontdesk.readers.read_isolated`) kills this process when it passes the wall-clock limit; the
address-space limit (RLIMIT_AS) set here makes a bloated read fail inside it. Either way only this
document fails, with its reason.

Protocol: the parent writes one pickled job on stdin (the parent is trusted); this process answers with
one JSON object on its own stdout (the answer comes from code that has handled a hostile file, so the
parent parses it as plain data, never unpickles it). Everything else the readers print goes to stderr,
which the parent discards: it may hold document text.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any


def _limit_memory(mb: int) -> None:
    if mb > 0:
        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _limit_pixels(megapixels: float) -> None:
    """Pillow refuses (or warns about, which the readers treat as refusal) images over the practice's
    pixel limit when it reads their header, before decoding: not only over its own default of 89 MP."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = int(megapixels * 1e6)


def _answer(out: Any, payload: dict[str, Any]) -> None:
    out.write(json.dumps(payload).encode("utf-8"))
    out.flush()


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints of any library go to stderr, never into the answer
    job = pickle.loads(sys.stdin.buffer.read())
    _limit_memory(int(job["memory_mb"]))
    try:
        from extractors import UnreadableDocument, faults, ocr
        from frontdesk.extraction import Reader

        faults.apply(Path(job["path"]))
        _limit_pixels(job["settings"].extraction.max_image_megapixels)
        ocr.set_width(int(job.get("ocr_width") or 1))
        reader = Reader(job["settings"], job.get("extra_forms_dirs"))
        docs = reader.read_here(Path(job["path"]))
        _answer(out, {"documents": [_plain(asdict(d)) for d in docs]})
    except UnreadableDocument as exc:
        _answer(out, {"unreadable": exc.reason, "encrypted": exc.encrypted})
    except MemoryError:
        _answer(out, {"unreadable": f"needed more than {job['memory_mb']} MB to read"})
    except Exception as exc:  # the class name only: a message may quote the document
        _answer(out, {"unreadable": f"the reader failed ({exc.__class__.__name__}); the file may be damaged"})
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(value)
    return value


if __name__ == "__main__":
    sys.exit(main())

"""A small ANSI X12 writer: segments and the ISA/GS/ST envelopes. Reading them back is
:mod:`extractors.x12` (the document pipeline reads responses with it); here it names the file in errors.

Why our own: the 270/271 (eligibility) are simple, fixed shapes, and pyx12 ships no 5010 map for them.
This module only knows X12's syntax (delimiters, envelopes, control numbers and counts); what goes into a
270, 271 or 837P lives in :mod:`frontdesk.claims.eligibility` and :mod:`frontdesk.claims.claim837`.
Round trips through an independent parser (``x12sdk``) are in the tests; every 837P is validated by
pyx12 against the HIPAA implementation guide's map before it is written.

Element values are cleaned before they are written: a delimiter inside a name (``O'Brien~Jr``) would
split the segment and corrupt the whole batch, so delimiters and control characters become spaces and
text is upper-cased (the basic character set payers expect).
"""

from __future__ import annotations

import re
import unicodedata

from extractors import x12 as _x12
from extractors.x12 import (
    MAX_FILE_BYTES,
    FunctionalGroup,
    Interchange,
    ParsedDelimiters,
    Party,
    Segment,
    Transaction,
    loops,
)
from frontdesk.exceptions import InputFileError

ELEMENT, COMPONENT, REPETITION, SEGMENT = "*", ":", "^", "~"


class X12Error(InputFileError):
    """An X12 file that cannot be read: the file and the reason (never a value from it)."""


_UNSAFE = re.compile(r"[*~:^\\\x00-\x1f\x7f]")
_NOT_BASIC = re.compile(r"[^A-Za-z0-9 !\"&'()+,\-./;?=%@\[\]_{}|<>#$]")
_PLAIN = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "ß": "ss", "Æ": "AE", "æ": "ae"})


def clean(value: object, *, max_len: int | None = None, upper: bool = True) -> str:
    """A value safe inside one element: no delimiters or control characters, single spaces."""
    text = "" if value is None else str(value)
    # payers' systems take the X12 basic and extended character sets: Núñez is sent as NUNEZ
    text = unicodedata.normalize("NFKD", text.translate(_PLAIN)).encode("ascii", "ignore").decode("ascii")
    text = " ".join(_NOT_BASIC.sub(" ", _UNSAFE.sub(" ", text)).split())
    if upper:
        text = text.upper()
    if max_len is not None:
        text = text[:max_len].rstrip()
    return text


def seg(id_: str, *elements: object) -> Segment:
    """Build a segment; trailing empty elements are dropped (X12 forbids trailing delimiters)."""
    out: list[str | tuple[str, ...]] = []
    for e in elements:
        if isinstance(e, tuple):
            comps = tuple("" if c is None else str(c) for c in e)
            while comps and comps[-1] == "":
                comps = comps[:-1]
            out.append(comps if len(comps) > 1 else (comps[0] if comps else ""))
        else:
            out.append("" if e is None else str(e))
    while out and out[-1] in ("", ()):
        out.pop()
    return Segment(id_, tuple(out))


def render_segment(s: Segment) -> str:
    parts = [s.id] + [COMPONENT.join(e) if isinstance(e, tuple) else e for e in s.elements]
    for p in parts[1:]:
        if SEGMENT in p or ELEMENT in p:
            raise ValueError(f"segment {s.id}: an element holds a delimiter")
    return ELEMENT.join(parts) + SEGMENT


def render_interchange(ix: Interchange, *, newline: bool = True) -> str:
    """The interchange as text, envelopes and counts filled in. ``newline`` puts each segment on its own
    line, which every parser accepts and people can read."""
    if not 1 <= ix.control_number <= 999_999_999:
        raise ValueError("interchange control number must be 1-999999999")
    when = ix.created
    isa = Segment("ISA", (
        "00", " " * 10, "00", " " * 10,
        ix.sender.qualifier.ljust(2)[:2], clean(ix.sender.id, max_len=15).ljust(15),
        ix.receiver.qualifier.ljust(2)[:2], clean(ix.receiver.id, max_len=15).ljust(15),
        when.strftime("%y%m%d"), when.strftime("%H%M"), REPETITION, "00501",
        f"{ix.control_number:09d}", "0", ix.usage, COMPONENT,
    ))
    segs: list[Segment] = [isa]
    for g in ix.groups:
        segs.append(seg("GS", g.functional_id, clean(g.sender_code, max_len=15), clean(g.receiver_code, max_len=15),
                        when.strftime("%Y%m%d"), when.strftime("%H%M"), str(g.control_number), "X", g.version))
        for t in g.transactions:
            st = seg("ST", t.set_id, t.control_number, t.version or g.version)
            segs.append(st)
            segs.extend(t.body)
            segs.append(seg("SE", str(len(t.body) + 2), t.control_number))
        segs.append(seg("GE", str(len(g.transactions)), str(g.control_number)))
    segs.append(seg("IEA", str(len(ix.groups)), f"{ix.control_number:09d}"))
    sep = "\n" if newline else ""
    return sep.join(render_segment(s) for s in segs) + sep


# --- reading: the syntax lives in extractors.x12 (the document pipeline reads responses with it) ------

def split_segments(text: str, where: str = "x12") -> tuple[list[Segment], ParsedDelimiters]:
    """Segments of an interchange; :class:`X12Error` names the file (``where``) and the reason."""
    try:
        return _x12.split_segments(text)
    except _x12.X12SyntaxError as exc:
        raise X12Error(where, exc.reason) from None


def parse_interchange(text: str, where: str = "x12") -> Interchange:
    """Read one interchange and check its envelopes (see :func:`extractors.x12.parse_interchange`)."""
    try:
        return _x12.parse_interchange(text)
    except _x12.X12SyntaxError as exc:
        raise X12Error(where, exc.reason) from None


def read_capped(path: object, max_bytes: int, kind: str) -> bytes:
    """A claims input file's bytes, refused before reading when larger than ``max_bytes``; the reason
    (a ValueError, no path in it) is for the caller's one-line error naming the file by its id."""
    from pathlib import Path

    p = Path(str(path))
    try:
        if p.stat().st_size > max_bytes:
            raise ValueError(f"file is too large for {kind}")
        return p.read_bytes()
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.__class__.__name__})") from None


def read_interchange_file(path: object, where: str | None = None) -> Interchange:
    """Read an X12 file from disk, with a size limit; errors name the file (by the id given)."""
    from pathlib import Path

    p = Path(str(path))
    label = where or p.name
    try:
        data = read_capped(p, MAX_FILE_BYTES, "an X12 response")
    except ValueError as exc:
        raise X12Error(label, str(exc)) from None
    return parse_interchange(_x12.decode(data), label)


__all__ = ["COMPONENT", "ELEMENT", "MAX_FILE_BYTES", "REPETITION", "SEGMENT", "FunctionalGroup", "Interchange",
           "ParsedDelimiters", "Party", "Segment", "Transaction", "X12Error", "clean", "loops", "parse_interchange",
           "read_capped", "read_interchange_file", "render_interchange", "render_segment", "seg", "split_segments"]

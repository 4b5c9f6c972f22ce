"""A small ANSI X12 writer and reader: segments, the ISA/GS/ST envelopes, and reading them back.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from frontdesk.exceptions import InputFileError

ELEMENT, COMPONENT, REPETITION, SEGMENT = "*", ":", "^", "~"
MAX_FILE_BYTES = 20 * 1024 * 1024  # a day's responses are kilobytes; this is the wrong file


class X12Error(InputFileError):
    """An X12 file that cannot be read: the file and the reason (never a value from it)."""


@dataclass(frozen=True)
class Segment:
    """One segment: its id (``NM1``) and its elements, element 1 first. A composite element is a
    tuple of components."""

    id: str
    elements: tuple[str | tuple[str, ...], ...] = ()

    def __getitem__(self, n: int) -> str:
        """Element ``n`` (1-based, as the implementation guides number them) as text; '' when absent."""
        if n < 1 or n > len(self.elements):
            return ""
        v = self.elements[n - 1]
        return COMPONENT.join(v) if isinstance(v, tuple) else v

    def component(self, n: int, m: int) -> str:
        """Component ``m`` of element ``n`` (both 1-based)."""
        if n < 1 or n > len(self.elements):
            return ""
        v = self.elements[n - 1]
        parts = v if isinstance(v, tuple) else tuple(v.split(COMPONENT)) if COMPONENT in v else (v,)
        return parts[m - 1] if 0 < m <= len(parts) else ""


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


@dataclass(frozen=True)
class Party:
    """An interchange sender or receiver: qualifier (ZZ mutually defined, 30 tax ID...) and ID."""

    qualifier: str
    id: str


@dataclass
class Interchange:
    """One ISA..IEA: sender, receiver, control number, usage (T test / P production) and its groups."""

    sender: Party
    receiver: Party
    control_number: int
    created: datetime
    usage: str = "T"
    groups: list[FunctionalGroup] = field(default_factory=list)


@dataclass
class FunctionalGroup:
    functional_id: str  # HS = 270, HB = 271, HC = 837
    version: str  # 005010X279A1 ...
    control_number: int
    sender_code: str
    receiver_code: str
    transactions: list[Transaction] = field(default_factory=list)


@dataclass
class Transaction:
    """One ST..SE: its set id (270, 271, 837), control number and body (without ST and SE)."""

    set_id: str
    control_number: str
    body: list[Segment]
    version: str = ""


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


# --- reading -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedDelimiters:
    element: str
    component: str
    repetition: str
    segment: str


def split_segments(text: str, where: str = "x12") -> tuple[list[Segment], ParsedDelimiters]:
    """Segments of an interchange, delimiters taken from its ISA (fixed width: 106 characters)."""
    body = text.lstrip("\ufeff \r\n\t")
    if not body.startswith("ISA") or len(body) < 106:
        raise X12Error(where, "not an X12 interchange (no ISA header)")
    el, comp, term = body[3], body[104], body[105]
    rep = body[82]
    if len({el, comp, term}) < 3:
        raise X12Error(where, "ISA header has clashing delimiters")
    delims = ParsedDelimiters(el, comp, rep if rep not in (el, comp, term) else "", term)
    segments: list[Segment] = []
    for raw in body.split(term):
        raw = raw.strip("\r\n\t ")
        if not raw:
            continue
        parts = raw.split(el)
        elements: list[str | tuple[str, ...]] = []
        for p in parts[1:]:
            if parts[0] != "ISA" and comp in p:
                elements.append(tuple(p.split(comp)))
            else:
                elements.append(p)
        segments.append(Segment(parts[0], tuple(elements)))
    return segments, delims


def parse_interchange(text: str, where: str = "x12") -> Interchange:
    """Read one interchange and check its envelopes: control numbers match, counts add up. A broken
    envelope means the file was cut or edited; nothing in it is trusted."""
    segments, _ = split_segments(text, where)
    it = iter(enumerate(segments, 1))
    n, isa = next(it)
    if isa.id != "ISA" or len(isa.elements) < 16:
        raise X12Error(where, "ISA segment is incomplete")
    try:
        created = datetime.strptime(isa[9] + isa[10], "%y%m%d%H%M")
        control = int(isa[13])
    except ValueError:
        raise X12Error(where, "ISA date, time or control number is not valid") from None
    ix = Interchange(Party(isa[5].strip(), isa[6].strip()), Party(isa[7].strip(), isa[8].strip()),
                     control, created, isa[15])
    group: FunctionalGroup | None = None
    tx: Transaction | None = None
    tx_count = 0
    done = False
    for n, s in it:
        if done:
            raise X12Error(where, f"segment {n}: data after IEA")
        if s.id == "GS":
            if group is not None:
                raise X12Error(where, f"segment {n}: GS inside an open group")
            group = FunctionalGroup(s[1], s[8], int(s[6] or 0), s[2], s[3])
        elif s.id == "ST":
            if group is None or tx is not None:
                raise X12Error(where, f"segment {n}: ST outside a group or inside a transaction")
            tx = Transaction(s[1], s[2], [], s[3])
            tx_count = 1
        elif s.id == "SE":
            if tx is None or group is None:
                raise X12Error(where, f"segment {n}: SE without ST")
            tx_count += 1
            if s[2] != tx.control_number:
                raise X12Error(where, f"segment {n}: SE control number does not match ST")
            if s[1] != str(tx_count):
                raise X12Error(where, f"segment {n}: SE counts {s[1]} segments, the transaction has {tx_count}")
            group.transactions.append(tx)
            tx = None
        elif s.id == "GE":
            if group is None or tx is not None:
                raise X12Error(where, f"segment {n}: GE without GS, or inside a transaction")
            if s[1] != str(len(group.transactions)) or s[2] != str(group.control_number):
                raise X12Error(where, f"segment {n}: GE count or control number does not match")
            ix.groups.append(group)
            group = None
        elif s.id == "IEA":
            if group is not None:
                raise X12Error(where, f"segment {n}: IEA inside an open group")
            if s[1] != str(len(ix.groups)) or int(s[2] or -1) != control:
                raise X12Error(where, f"segment {n}: IEA count or control number does not match")
            done = True
        elif tx is not None:
            tx.body.append(s)
            tx_count += 1
        else:
            raise X12Error(where, f"segment {n}: {s.id} outside a transaction")
    if not done:
        raise X12Error(where, "no IEA: the file is cut short")
    return ix


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
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_interchange(text, label)


def loops(body: Sequence[Segment], start: str, stops: Iterable[str]) -> list[list[Segment]]:
    """Split a body into runs that each begin with a ``start`` segment and end before the next one, or
    before a segment in ``stops``."""
    stop = set(stops)
    out: list[list[Segment]] = []
    cur: list[Segment] | None = None
    for s in body:
        if s.id == start:
            cur = [s]
            out.append(cur)
        elif s.id in stop:
            cur = None
        elif cur is not None:
            cur.append(s)
    return out

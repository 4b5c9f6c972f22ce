"""ANSI X12 files as plain data: segments, the ISA/GS/ST envelopes, and which response a file is.

Why here, below the core: a clearinghouse's answers (271 eligibility, 999 acknowledgment, 277CA claim
acknowledgment) arrive in the watched folder like any scan, and the document pipeline reads every input
through :func:`extractors.read_documents` in a reading process of its own, under its time and memory
limits. This module knows X12's syntax only (delimiters from the ISA, envelopes, control numbers and
counts); what a 271, 999 or 277CA *means* is :mod:`frontdesk.claims`' business. It imports nothing of
Frontdesk. Errors carry a reason and never a value from the file (values are patient data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

COMPONENT = ":"
MAX_FILE_BYTES = 20 * 1024 * 1024  # a day's responses are kilobytes; this is the wrong file

#: The responses Frontdesk reads, by transaction set (ST01), as the pipeline's document types.
RESPONSE_TYPES = {"271": "x12_271", "999": "x12_999", "277": "x12_277"}


class X12SyntaxError(ValueError):
    """An X12 file that cannot be trusted: cut short, edited, or not X12 at all. One line, no values."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

    def transactions(self, set_id: str | None = None) -> list[Transaction]:
        return [t for g in self.groups for t in g.transactions if set_id is None or t.set_id == set_id]


@dataclass
class FunctionalGroup:
    functional_id: str  # HS = 270, HB = 271, HC = 837, FA = 999, HN = 277
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


@dataclass(frozen=True)
class ParsedDelimiters:
    element: str
    component: str
    repetition: str
    segment: str


def looks_like_x12(head: bytes) -> bool:
    """Whether a file's first bytes are an ISA header (after a byte-order mark or blank lines)."""
    return head.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"ISA")


def split_segments(text: str) -> tuple[list[Segment], ParsedDelimiters]:
    """Segments of an interchange, delimiters taken from its ISA (fixed width: 106 characters)."""
    body = text.lstrip("\ufeff \r\n\t")
    if not body.startswith("ISA") or len(body) < 106:
        raise X12SyntaxError("not an X12 interchange (no ISA header)")
    el, comp, term = body[3], body[104], body[105]
    rep = body[82]
    if len({el, comp, term}) < 3:
        raise X12SyntaxError("ISA header has clashing delimiters")
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


def parse_interchange(text: str) -> Interchange:
    """Read one interchange and check its envelopes: control numbers match, counts add up. A broken
    envelope means the file was cut or edited; nothing in it is trusted."""
    segments, _ = split_segments(text)
    it = iter(enumerate(segments, 1))
    n, isa = next(it)
    if isa.id != "ISA" or len(isa.elements) < 16:
        raise X12SyntaxError("ISA segment is incomplete")
    try:
        created = datetime.strptime(isa[9] + isa[10], "%y%m%d%H%M")
        control = int(isa[13])
    except ValueError:
        raise X12SyntaxError("ISA date, time or control number is not valid") from None
    ix = Interchange(Party(isa[5].strip(), isa[6].strip()), Party(isa[7].strip(), isa[8].strip()),
                     control, created, isa[15])
    group: FunctionalGroup | None = None
    tx: Transaction | None = None
    tx_count = 0
    done = False
    for n, s in it:
        if done:
            raise X12SyntaxError(f"segment {n}: data after IEA")
        if s.id == "GS":
            if group is not None:
                raise X12SyntaxError(f"segment {n}: GS inside an open group")
            try:
                group_control = int(s[6] or 0)
            except ValueError:
                raise X12SyntaxError(f"segment {n}: GS control number is not a number") from None
            group = FunctionalGroup(s[1], s[8], group_control, s[2], s[3])
        elif s.id == "ST":
            if group is None or tx is not None:
                raise X12SyntaxError(f"segment {n}: ST outside a group or inside a transaction")
            tx = Transaction(s[1], s[2], [], s[3])
            tx_count = 1
        elif s.id == "SE":
            if tx is None or group is None:
                raise X12SyntaxError(f"segment {n}: SE without ST")
            tx_count += 1
            if s[2] != tx.control_number:
                raise X12SyntaxError(f"segment {n}: SE control number does not match ST")
            if s[1] != str(tx_count):
                raise X12SyntaxError(f"segment {n}: SE counts {s[1]} segments, the transaction has {tx_count}")
            group.transactions.append(tx)
            tx = None
        elif s.id == "GE":
            if group is None or tx is not None:
                raise X12SyntaxError(f"segment {n}: GE without GS, or inside a transaction")
            if s[1] != str(len(group.transactions)) or s[2] != str(group.control_number):
                raise X12SyntaxError(f"segment {n}: GE count or control number does not match")
            ix.groups.append(group)
            group = None
        elif s.id == "IEA":
            if group is not None:
                raise X12SyntaxError(f"segment {n}: IEA inside an open group")
            try:
                iea_control = int(s[2] or -1)
            except ValueError:
                iea_control = -1
            if s[1] != str(len(ix.groups)) or iea_control != control:
                raise X12SyntaxError(f"segment {n}: IEA count or control number does not match")
            done = True
        elif tx is not None:
            tx.body.append(s)
            tx_count += 1
        else:
            raise X12SyntaxError(f"segment {n}: {s.id} outside a transaction")
    if not done:
        raise X12SyntaxError("no IEA: the file is cut short")
    return ix


def decode(data: bytes) -> str:
    """X12 is ASCII; a payer's Latin-1 name must not stop the file from being read."""
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_bytes_capped(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refused before reading when larger than ``max_bytes``."""
    try:
        if path.stat().st_size > max_bytes:
            raise X12SyntaxError("file is too large for an X12 response")
        return path.read_bytes()
    except FileNotFoundError:
        raise X12SyntaxError("file not found") from None
    except OSError as exc:
        raise X12SyntaxError(f"cannot read ({exc.__class__.__name__})") from None


def response_type(ix: Interchange) -> str:
    """``x12_271``, ``x12_999`` or ``x12_277`` for an interchange holding one kind of response; a
    file of requests (270, 837) or of mixed kinds is not a response Frontdesk reads."""
    kinds = {t.set_id for t in ix.transactions()}
    if not kinds:
        raise X12SyntaxError("no transaction in this interchange")
    if len(kinds) > 1:
        raise X12SyntaxError("transactions of different kinds in one interchange")
    kind = kinds.pop()
    if kind not in RESPONSE_TYPES:
        shown = kind if kind.isdigit() and len(kind) == 3 else "file"  # never echo free text from the file
        raise X12SyntaxError(f"an X12 {shown} is not a response Frontdesk reads (271, 999 or 277CA)")
    return RESPONSE_TYPES[kind]


@dataclass
class X12Reading:
    """What the document pipeline needs to know of an X12 file: its document type, the implementation
    guide it follows and its control number. The transactions themselves are read by the core, from
    the bytes it files (:mod:`frontdesk.claims.responses`)."""

    document_type: str
    version: str
    control_number: int
    transactions: int


def read_x12(path: Path, max_bytes: int = MAX_FILE_BYTES) -> X12Reading:
    """Read and check an X12 response file (raises :class:`X12SyntaxError`)."""
    ix = parse_interchange(decode(read_bytes_capped(Path(path), max_bytes)))
    kind = response_type(ix)
    versions = {g.version for g in ix.groups}
    return X12Reading(kind, versions.pop() if len(versions) == 1 else "", ix.control_number,
                      len(ix.transactions()))


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

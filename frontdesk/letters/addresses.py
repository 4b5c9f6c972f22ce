"""Is a mailing address complete enough to put in an envelope?

A letter sent to half an address comes back weeks later, or reaches someone else: a piece whose address
is incomplete or cannot be parsed is held back and reported, never mailed. ``usaddress`` tags the parts
of a US address; on top of its tags the rules are strict, because it tags anything (a spreadsheet
formula comes back as a "PO Box"): a delivery line (number and street, or a PO box / rural route with a
number), a city, a USPS state code and a ZIP code, all in printable characters, on at most four lines
that fit the envelope window.

Problems are codes with a plain reason, never the address itself: they are printed in summaries and
stored in batch records that IT staff read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import usaddress

from frontdesk.billable import check_state, check_zip

MAX_LINES = 4  # plus the name: five lines fill the 0.875" recipient window at 12 pt
MAX_LINE_CHARS = 46  # what fits 3.5" at 10 pt Arial, with room to spare for wide letters

_BOX_TYPES = re.compile(r"^(p\.?\s*o\.?\s*box|post\s+office\s+box|box|pob|p\.?\s*o\.?\s*b\.?|drawer|caller)$", re.I)
_ROUTE_TYPES = re.compile(r"^(rural\s+route|rr|r\.r\.|highway\s+contract\s+route|hc|star\s+route|psc|cmr|unit)$",
                          re.I)
_BOX_ID = re.compile(r"^[0-9A-Za-z-]{1,10}$")
_NUMBER = re.compile(r"^\d+[A-Za-z]?(-\d+)?$|^\d+\s*1/2$|^[NSEW]\d+[NSEW]?\d*$", re.I)
_PLACE = re.compile(r"^[^\W\d_][\w .'-]*$", re.UNICODE)


@dataclass(frozen=True)
class AddressProblem:
    """Why a piece cannot be mailed: ``code`` for reports, ``reason`` for the person fixing the record."""

    code: str
    reason: str


def _printable(text: str) -> bool:
    return all(unicodedata.category(ch)[0] not in ("C", "Z") or ch == " " for ch in text)


def clean_lines(lines: Sequence[object]) -> list[str]:
    """Address lines as printed: strings, whitespace collapsed, blank lines dropped."""
    cleaned = []
    for line in lines:
        if not isinstance(line, str):
            continue
        text = " ".join(line.split())
        if text:
            cleaned.append(text)
    return cleaned


def check_address(name: object, lines: Sequence[object]) -> AddressProblem | None:
    """None when ``name`` and ``lines`` make a complete US mailing address, else the first problem."""
    if not isinstance(name, str) or not " ".join(name.split()):
        return AddressProblem("address.no_name", "the recipient has no name")
    if not isinstance(lines, Sequence) or isinstance(lines, str):
        return AddressProblem("address.missing", "there is no mailing address")
    address = clean_lines(lines)
    if not address:
        return AddressProblem("address.missing", "there is no mailing address")
    texts = [" ".join(name.split()), *address]
    if not all(_printable(t) for t in texts):
        return AddressProblem("address.unprintable", "the address contains characters that cannot be printed")
    if len(address) > MAX_LINES:
        return AddressProblem("address.too_long", f"the address has more than {MAX_LINES} lines")
    if any(len(t) > MAX_LINE_CHARS for t in texts):
        return AddressProblem("address.too_long", f"a line of the address is longer than {MAX_LINE_CHARS} characters")
    try:
        parts, _kind = usaddress.tag(", ".join(address))
    except usaddress.RepeatedLabelError:
        return AddressProblem("address.unparseable", "the address cannot be read as a US address")
    except Exception:  # usaddress is a statistical parser: any failure means it could not read it
        return AddressProblem("address.unparseable", "the address cannot be read as a US address")

    street = parts.get("AddressNumber") and parts.get("StreetName")
    if street and not _NUMBER.match(parts["AddressNumber"]):
        street = None
    box = parts.get("USPSBoxID") and _BOX_ID.match(parts["USPSBoxID"]) and (
        _BOX_TYPES.match(parts.get("USPSBoxType", "")) or _ROUTE_TYPES.match(parts.get("USPSBoxGroupType", "")))
    if not (street or box):
        return AddressProblem("address.incomplete", "the address has no street and number or PO box")
    place = parts.get("PlaceName", "")
    if not place or not _PLACE.match(place):
        return AddressProblem("address.incomplete", "the address has no city")
    if check_state(parts.get("StateName", "")):
        return AddressProblem("address.incomplete", "the address has no valid two-letter state code")
    if check_zip(parts.get("ZipCode", "")):
        return AddressProblem("address.incomplete", "the address has no valid ZIP code")
    if not address[-1].rstrip().endswith(parts["ZipCode"]):
        return AddressProblem("address.unparseable", "the last line is not city, state and ZIP code")
    return None


def zip_code(lines: Sequence[object]) -> str:
    """The ZIP code of an address already checked (for sorting a batch the way the post office likes)."""
    address = clean_lines(lines)
    match = re.search(r"(\d{5})(-\d{4})?\s*$", address[-1]) if address else None
    return match.group(1) if match else ""


__all__ = ["MAX_LINES", "MAX_LINE_CHARS", "AddressProblem", "check_address", "clean_lines", "zip_code"]

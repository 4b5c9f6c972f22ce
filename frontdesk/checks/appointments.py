"""Appointments in: a scheduling system's CSV export (column mapping in ``config/checks.yaml``) or a FHIR
R4 Bundle of Appointment and Patient resources.

Every problem names the file, where in it (a CSV row numbered as a spreadsheet shows it, header = row 1,
and the column's header; a FHIR entry number and element) and the reason, never the value: the value
is patient data and these messages go to terminals and logs. A file that cannot be read at all (empty,
missing columns, not JSON) is always an error; bad rows are errors unless the caller asked to skip them,
in which case they are returned as problems next to the good appointments.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

from frontdesk.checks.config import AppointmentsConfig, CsvFormat
from frontdesk.exceptions import InputFileError
from frontdesk.normalisers import collapse

MAX_FILE_BYTES = 50 * 1024 * 1024  # a day's schedule is kilobytes; anything this large is the wrong file


@dataclass(frozen=True)
class RowProblem:
    """One bad row: where (``row 7`` / ``entry 3``), which column or element, and why."""

    where: str
    column: str | None
    reason: str

    def __str__(self) -> str:
        if not self.column:
            return f"{self.where}: {self.reason}"
        what = "element" if self.where.startswith("entry") else "column"  # JSON has elements, not columns
        return f"{self.where}, {what} '{self.column}': {self.reason}"


class AppointmentFileError(InputFileError):
    """The appointments file cannot be used. ``problems`` lists every bad row found, not just the first,
    so staff fix the export once."""

    def __init__(self, path: Path | str, reason: str, problems: Sequence[RowProblem] = ()) -> None:
        self.problems = list(problems)
        if self.problems:
            shown = self.problems[:20]
            more = len(self.problems) - len(shown)
            lines = [str(p) for p in shown] + ([f"... and {more} more"] if more else [])
            reason = reason + "\n  " + "\n  ".join(lines)
        super().__init__(path, reason)


@dataclass
class Appointment:
    """One visit as the scheduling system exported it. ``start`` is wall-clock time at the practice."""

    where: str
    start: datetime
    provider: str
    external_id: str | None = None
    provider_npi: str | None = None
    mrn: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    referring_npi: str | None = None
    status: str | None = None
    visit_type: str | None = None
    address: dict[str, str] = field(default_factory=dict)  # street, city, state, zip (FHIR Patient.address)

    @property
    def key(self) -> str:
        """Stable across runs and files: the scheduling system's id, else a digest of the visit.

        The digest keeps patient data out of the key, which is stored with every check run.
        """
        if self.external_id:
            return self.external_id
        ident = "|".join([self.start.isoformat(timespec="minutes"), self.provider.casefold(),
                          (self.mrn or "").casefold(), (self.last_name or "").casefold(),
                          (self.first_name or "").casefold(),
                          self.date_of_birth.isoformat() if self.date_of_birth else ""])
        return "appt-" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]

    @property
    def patient_name(self) -> str:
        return " ".join(x for x in (self.first_name, self.last_name) if x)


@dataclass
class ParsedAppointments:
    source: Path
    format: str
    appointments: list[Appointment]
    problems: list[RowProblem] = field(default_factory=list)
    cancelled: list[Appointment] = field(default_factory=list)  # cancelled, no-show...: not checked

    @property
    def skipped_status(self) -> int:
        return len(self.cancelled)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AppointmentFileError(path, f"file is too large for an appointment export ({size // 1_000_000} MB)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise AppointmentFileError(path, "file not found") from None
    except IsADirectoryError:
        raise AppointmentFileError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise AppointmentFileError(path, f"cannot read file ({exc.strerror or exc.__class__.__name__})") from None
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise AppointmentFileError(path, "the file is empty (expected a header row and one row per appointment)")
    return data


def load_appointments(path: Path, config: AppointmentsConfig, tz: tzinfo, *, skip_bad_rows: bool = False,
                      today: date | None = None) -> ParsedAppointments:
    """Read a CSV or FHIR JSON file (told apart by content, not by name: exports get renamed)."""
    path = Path(path)
    data = _read_bytes(path)
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        parsed = parse_fhir_bundle(path, data, config, tz, today=today)
    else:
        parsed = parse_csv(path, data, config, tz=tz, today=today)
    _drop_duplicates(parsed)
    if parsed.problems and not skip_bad_rows:
        n, good = len({p.where for p in parsed.problems}), len(parsed.appointments) + parsed.skipped_status
        unit = "entr" if parsed.format == "fhir" else "row"
        plural = {"entr": ("y", "ies"), "row": ("", "s")}[unit]
        raise AppointmentFileError(
            path, f"{n} bad {unit}{plural[n != 1]} (fix the export, or use --skip-bad-rows to check the "
                  f"{good} good one{'s' if good != 1 else ''})",
            parsed.problems)
    return parsed


def _drop_duplicates(parsed: ParsedAppointments) -> None:
    """One appointment ID twice is an export glitch: checking both would list the patient twice and
    the second reminder would collide with the first. The first row stands; the others are bad rows."""
    first: dict[str, str] = {}
    kept = []
    for a in parsed.appointments:
        if a.external_id and a.external_id in first:
            parsed.problems.append(RowProblem(a.where, None, f"the same appointment ID as {first[a.external_id]}"))
            continue
        if a.external_id:
            first[a.external_id] = a.where
        kept.append(a)
    parsed.appointments = kept


# --------------------------------------------------------------------------------------------------- CSV

def _header_key(text: str) -> str:
    return " ".join(text.replace("\ufeff", "").split()).casefold()


def _human_format(fmt: str) -> str:
    out = fmt
    for code, text in (("%Y", "YYYY"), ("%y", "YY"), ("%m", "MM"), ("%d", "DD"), ("%H", "HH"), ("%I", "HH"),
                       ("%M", "MM"), ("%S", "SS"), ("%p", "AM/PM")):
        out = out.replace(code, text)
    return out


def _decode(path: Path, data: bytes, encoding: str) -> tuple[str, str]:
    """Decode keeping undecodable bytes as lone surrogates, so a bad byte can be traced to its row and
    column instead of failing the whole file at a byte offset nobody can find in a spreadsheet."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise AppointmentFileError(path, "starts as UTF-16 text but is not valid UTF-16") from None
    enc = "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding
    return data.decode(enc, errors="surrogateescape"), encoding


_SURROGATE = re.compile("[\udc80-\udcff]")


def _encoding_hint(data: bytes, encoding: str) -> str:
    for guess in ("cp1252", "latin-1"):
        if guess != encoding:
            try:
                data.decode(guess)
            except UnicodeDecodeError:
                continue
            return (f"not {encoding} text; the file looks like {guess.replace('cp', 'Windows-')}: export it as "
                    f"UTF-8, or set appointments.encoding: {guess} in config/checks.yaml")
    return f"not {encoding} text"


def _choose_format(path: Path, header: list[str], formats: Mapping[str, CsvFormat]) -> tuple[str, CsvFormat,
                                                                                         dict[str, int]]:
    """The configured format whose columns the header has (the one with most, when several fit)."""
    if not formats:
        raise AppointmentFileError(path, "no CSV formats are configured (appointments.csv_formats in checks.yaml)")
    present = {_header_key(h): i for i, h in enumerate(header) if h.strip()}
    viable: list[tuple[int, str, dict[str, int]]] = []
    for name, fmt in formats.items():
        found = {f: present[_header_key(c)] for f, c in fmt.columns.items() if _header_key(c) in present}
        subset = fmt.model_copy(update={"columns": {f: fmt.columns[f] for f in found}})
        if subset.check_complete() is None:
            viable.append((len(found), name, found))
    if viable:
        _, name, found = max(viable, key=lambda v: v[0])
        return name, formats[name], found
    # Nothing fits: name the missing columns of the format the header comes closest to.
    name, fmt = max(formats.items(), key=lambda kv: sum(_header_key(c) in present for c in kv[1].columns.values()))
    missing = [fmt.columns[f] for f in fmt.required if _header_key(fmt.columns[f]) not in present]
    if not missing:  # the required ones are there, yet the patient cannot be identified
        missing = [c for c in fmt.columns.values() if _header_key(c) not in present]
    listed = ", ".join(f"'{c}'" for c in missing)
    raise AppointmentFileError(
        path, f"row 1 (header): missing column{'s' if len(missing) != 1 else ''} {listed} "
              f"(closest known format: {name}; column names are set in config/checks.yaml)")


def _parse_date(text: str, formats: Sequence[str], *, past: bool, today: date) -> date | None:
    for fmt in formats:
        try:
            d = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if past and "%y" in fmt and d > today:  # a two-digit birth year is never in the future
            d = d.replace(year=d.year - 100)
        return d
    return None


def _parse_time(text: str, formats: Sequence[str]) -> time | None:
    norm = re.sub(r"\s*([ap])\.?m\.?$", lambda m: f" {m.group(1).upper()}M", text.strip(), flags=re.I)
    for fmt in formats:
        for candidate in (norm, norm.replace(" ", "")):
            try:
                return datetime.strptime(candidate, fmt).time()
            except ValueError:
                continue
    return None


def _parse_datetime(text: str, fmt: CsvFormat, tz: tzinfo | None) -> datetime | None:
    for f in fmt.datetime_formats:
        try:
            return datetime.strptime(text, f)
        except ValueError:
            continue
    try:  # ISO 8601 with an offset, as EHR exports often write it
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(tz).replace(tzinfo=None) if tz is not None else dt.replace(tzinfo=None)
    return dt


def _split_name(text: str, order: str) -> tuple[str, str] | None:
    if order == "last_first":
        if "," not in text:
            return None
        last, first = (x.strip() for x in text.split(",", 1))
        return (first, last) if first and last else None
    parts = text.rsplit(" ", 1)
    return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else None


class _Row:
    """One CSV row being read: its cells by logical field, and the problems found so far."""

    def __init__(self, number: int, cells: list[str], idx: Mapping[str, int], label: Mapping[str, str],
                 fmt: CsvFormat, encoding_problem: str) -> None:
        self.where = f"row {number}"
        self.fmt = fmt
        self.label = label
        self.problems: list[RowProblem] = []
        self.values: dict[str, str | None] = {}
        for f, i in idx.items():
            raw = cells[i] if i < len(cells) else ""
            if _SURROGATE.search(raw):
                self.problems.append(RowProblem(self.where, label[f], encoding_problem))
                self.values[f] = None
            else:
                self.values[f] = collapse(raw)

    def bad(self, f: str, reason: str) -> None:
        self.problems.append(RowProblem(self.where, self.label.get(f, f), reason))

    def get(self, f: str) -> str | None:
        return self.values.get(f)

    def need(self, f: str) -> str | None:
        """A value the format marks required: an empty cell is a problem named by its column."""
        v = self.values.get(f)
        if v is None and f in self.label and (f in self.fmt.required or f == "provider"):
            self.bad(f, "is empty")
        return v


def _read_row(row: _Row, fmt: CsvFormat, tz: tzinfo | None, today: date) -> Appointment | None:
    start: datetime | None = None
    if "start" in row.label:
        raw_start = row.need("start")
        if raw_start is not None:
            start = _parse_datetime(raw_start, fmt, tz)
            if start is None:
                row.bad("start", "not a date and time (expected "
                        + " or ".join(_human_format(f) for f in fmt.datetime_formats[:2]) + ")")
    else:
        raw_date, raw_time = row.need("date"), row.need("time")
        d = _parse_date(raw_date, fmt.date_formats, past=False, today=today) if raw_date else None
        t = _parse_time(raw_time, fmt.time_formats) if raw_time else None
        if raw_date and d is None:
            row.bad("date", f"not a date (expected {_human_format(fmt.date_formats[0])})")
        if raw_time and t is None:
            row.bad("time", f"not a time (expected {_human_format(fmt.time_formats[0])})")
        if d is not None and t is not None:
            start = datetime.combine(d, t)
    provider = row.need("provider")
    first = last = None
    if "patient_name" in row.label:
        raw_name = row.need("patient_name")
        split = _split_name(raw_name, fmt.name_order) if raw_name else None
        if raw_name and split is None:
            expected = "Last, First" if fmt.name_order == "last_first" else "First Last"
            row.bad("patient_name", f"not a name in the form '{expected}'")
        if split:
            first, last = split
    else:
        first, last = row.need("first_name"), row.need("last_name")
    raw_dob = row.need("date_of_birth")
    dob = _parse_date(raw_dob, fmt.date_formats, past=True, today=today) if raw_dob else None
    if raw_dob and dob is None:
        row.bad("date_of_birth", f"not a date (expected {_human_format(fmt.date_formats[0])})")
    mrn = row.get("mrn")
    if not row.problems and mrn is None and not (first and last and dob):
        row.bad("mrn" if "mrn" in row.label else "date_of_birth",
                "no MRN, and the name or date of birth is missing: the patient cannot be found")
    if row.problems or start is None or provider is None:
        return None
    return Appointment(
        where=row.where, start=start, provider=provider, external_id=row.get("appointment_id"),
        provider_npi=row.get("provider_npi"), mrn=mrn, first_name=first, last_name=last, date_of_birth=dob,
        referring_npi=row.get("referring_npi"), status=row.get("status"), visit_type=row.get("visit_type"))


def parse_csv(path: Path, data: bytes, config: AppointmentsConfig, *, tz: tzinfo | None = None,
              today: date | None = None) -> ParsedAppointments:
    today = today or date.today()
    text, encoding = _decode(path, data, config.encoding)
    encoding_problem = _encoding_hint(data, encoding)
    try:
        dialect: Any = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(rows)
    except StopIteration:
        raise AppointmentFileError(path, "the file is empty (expected a header row)") from None
    except csv.Error as exc:
        raise AppointmentFileError(path, f"row 1 (header): not readable as CSV ({exc})") from None
    for i, h in enumerate(header, 1):
        if _SURROGATE.search(h):
            raise AppointmentFileError(path, f"row 1 (header), column {i}: {encoding_problem}")
    fmt_name, fmt, idx = _choose_format(path, header, config.csv_formats)
    label = {f: header[i].strip() for f, i in idx.items()}
    skip = {s.casefold() for s in config.skip_statuses}
    out = ParsedAppointments(path, f"csv:{fmt_name}", [])
    number = 1
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            number += 1
            out.problems.append(RowProblem(f"row {number}", None, f"not readable as CSV ({exc})"))
            continue
        number += 1
        if not any(c.strip() for c in cells):
            continue  # blank lines at the end of exports are normal
        row = _Row(number, cells, idx, label, fmt, encoding_problem)
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            row.problems.append(RowProblem(row.where, f"{len(header) + 1} (no header)",
                                           f"{len(cells)} values but the header has {len(header)} columns"))
        appt = None if row.problems else _read_row(row, fmt, tz, today)
        if appt is None:
            out.problems.extend(row.problems)
            continue
        (out.cancelled if appt.status is not None and appt.status.casefold() in skip
         else out.appointments).append(appt)
    return out


# -------------------------------------------------------------------------------------------------- FHIR

MR_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
REFERRER_CODE = "REF"  # v3 ParticipationType: referrer


def _codes(concepts: Any) -> set[str]:
    out: set[str] = set()
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, dict):
            for coding in concept.get("coding") or []:
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    out.add(coding["code"])
    return out


def _identifier(resource: Mapping[str, Any], *, systems: Sequence[str], type_code: str | None) -> str | None:
    for ident in resource.get("identifier") or []:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        if ident.get("system") in systems or (type_code and type_code in _codes(ident.get("type"))):
            return collapse(ident["value"])
    return None


def _human_name(resource: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(given names, family, display text) of the official name, else the first one."""
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    if not names:
        return None, None, None
    name = next((n for n in names if n.get("use") == "official"), names[0])
    given = " ".join(g for g in name.get("given") or [] if isinstance(g, str)) or None
    family = name.get("family") if isinstance(name.get("family"), str) else None
    prefix = " ".join(p for p in name.get("prefix") or [] if isinstance(p, str))
    text = name.get("text") if isinstance(name.get("text"), str) else None
    display = text or " ".join(x for x in (prefix, given, family) if x) or None
    return collapse(given), collapse(family), collapse(display)


def _address(resource: Mapping[str, Any]) -> dict[str, str]:
    """The first home (else any) address, as the letters expect it: street, city, state, zip."""
    addrs = [a for a in resource.get("address") or [] if isinstance(a, dict)]
    if not addrs:
        return {}
    addr = next((a for a in addrs if a.get("use") == "home"), addrs[0])
    lines = [collapse(x) for x in addr.get("line") or [] if isinstance(x, str)]
    out = {"street": " ".join(x for x in lines if x), "city": collapse(addr.get("city")) or "",
           "state": (collapse(addr.get("state")) or "").upper(), "zip": collapse(addr.get("postalCode")) or ""}
    return {k: v for k, v in out.items() if v}


#: Participant roles (v3 ParticipationType) that only a person providing care plays.
_PROVIDER_CODES = {"ATND", "PPRF", "SPRF", "PART", "CON", "ADM", "DIS", "REF", "PRF"}
_NOT_PROVIDERS = {"Patient", "Location", "Device", "HealthcareService", "RelatedPerson", "Group"}


def _display_only_practitioner(actor: Any, part: Mapping[str, Any]) -> tuple[str, str | None, bool] | None:
    """(name, NPI, typed) for a participant whose actor has a display but no reference, when it can be a
    practitioner: its Reference.type says Practitioner (or PractitionerRole), or its participant type is a
    provider's role (typed); or nothing says what it is (untyped). None for a Location, a Patient..."""
    if not isinstance(actor, dict):
        return None
    name = collapse(actor.get("display")) if isinstance(actor.get("display"), str) else None
    if not name:
        return None
    kind = actor.get("type") if isinstance(actor.get("type"), str) else None
    kind = kind.rstrip("/").rsplit("/", 1)[-1] if kind else None  # a canonical URL or a bare type name
    npi = None
    ident = actor.get("identifier")
    if isinstance(ident, dict) and ident.get("system") == NPI_SYSTEM and isinstance(ident.get("value"), str):
        npi = ident["value"].strip() or None
    if kind in _NOT_PROVIDERS:
        return None
    if kind in ("Practitioner", "PractitionerRole") or _codes(part.get("type")) & _PROVIDER_CODES:
        return name, npi, True
    if kind is not None:
        return None  # some other kind of resource
    return name, npi, False


def parse_fhir_bundle(path: Path, data: bytes, config: AppointmentsConfig, tz: tzinfo, *,
                      today: date | None = None) -> ParsedAppointments:
    try:
        bundle = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise AppointmentFileError(path, "not UTF-8 text (FHIR JSON is always UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise AppointmentFileError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise AppointmentFileError(path, "expected a FHIR Bundle (resourceType 'Bundle') of Appointment and "
                                         "Patient resources")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise AppointmentFileError(path, "element 'entry' is not a list")
    by_ref: dict[str, dict[str, Any]] = {}
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            continue
        if isinstance(e.get("fullUrl"), str):
            by_ref[e["fullUrl"]] = res
        if isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
            by_ref[f"{res['resourceType']}/{res['id']}"] = res
    skip = {s.casefold() for s in config.skip_statuses} | {"noshow"}
    out = ParsedAppointments(path, "fhir", [])
    for n, e in enumerate(entries, 1):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            out.problems.append(RowProblem(f"entry {n}", "resource", "is missing"))
            continue
        if res.get("resourceType") != "Appointment":
            continue
        where = f"entry {n} (Appointment)"
        problems: list[RowProblem] = []
        status = res.get("status") if isinstance(res.get("status"), str) else None
        start: datetime | None = None
        raw_start = res.get("start")
        if not isinstance(raw_start, str) or not raw_start.strip():
            problems.append(RowProblem(where, "start", "is missing"))
        else:
            try:
                parsed = datetime.fromisoformat(raw_start.strip())
            except ValueError:
                problems.append(RowProblem(where, "start", "not a date and time (FHIR instant, e.g. "
                                                           "2026-03-03T09:30:00-06:00)"))
            else:
                start = parsed.astimezone(tz).replace(tzinfo=None) if parsed.tzinfo else parsed
        patient: dict[str, Any] | None = None
        provider = provider_npi = referring_npi = None
        untyped: tuple[str, str | None] | None = None  # a display-only actor of no stated type
        for k, part in enumerate(res.get("participant") or []):
            actor = part.get("actor") if isinstance(part, dict) else None
            ref = actor.get("reference") if isinstance(actor, dict) else None
            if not isinstance(ref, str):
                # FHIR R4 allows a Reference with only a display (and perhaps a type or an identifier):
                # systems send the provider that way. Typed ones are taken as they say; an untyped one
                # only when nothing better names the provider.
                found = _display_only_practitioner(actor, part)
                if found is None:
                    continue
                name, npi, typed = found
                if REFERRER_CODE in _codes(part.get("type")):
                    referring_npi = referring_npi or npi
                elif typed and provider is None:
                    provider, provider_npi = name, npi
                elif not typed and untyped is None:
                    untyped = (name, npi)
                continue
            target = by_ref.get(ref)
            kind = ref.split("/")[-2] if "/" in ref else (target or {}).get("resourceType")
            if target is not None:
                kind = target.get("resourceType", kind)
            if kind == "Patient":
                if target is None:
                    problems.append(RowProblem(where, f"participant[{k}].actor.reference",
                                               "names a Patient that is not in the bundle"))
                else:
                    patient = target
            elif kind == "Practitioner":
                npi = _identifier(target, systems=[NPI_SYSTEM], type_code=None) if target else None
                display = (_human_name(target)[2] if target else None) or (
                    collapse(actor.get("display")) if isinstance(actor, dict) else None)
                if REFERRER_CODE in _codes(part.get("type")):
                    referring_npi = npi
                elif provider is None:
                    provider, provider_npi = display, npi
        if patient is None and not any(p.column and p.column.startswith("participant") for p in problems):
            problems.append(RowProblem(where, "participant", "no Patient participant"))
        if provider is None and untyped is not None:
            provider, provider_npi = untyped
        if provider is None:
            problems.append(RowProblem(where, "participant", "no Practitioner participant with a name"))
        mrn = first = last = None
        dob = None
        address: dict[str, str] = {}
        if patient is not None:
            mrn = _identifier(patient, systems=config.mrn_systems, type_code="MR")
            first, last, _ = _human_name(patient)
            birth = patient.get("birthDate")
            if isinstance(birth, str) and birth.strip():
                try:
                    dob = date.fromisoformat(birth.strip())
                except ValueError:
                    problems.append(RowProblem(f"{where} -> Patient", "birthDate", "not a full date (YYYY-MM-DD)"))
            address = _address(patient)
            if not problems and mrn is None and not (first and last and dob):
                problems.append(RowProblem(f"{where} -> Patient", "identifier",
                                           "no MRN, and the name or birth date is missing: the patient cannot be found"))
        if problems:
            out.problems.extend(problems)
            continue
        assert start is not None and provider is not None
        # The scheduling system's own number (the one its CSV export shows) is the business identifier.
        idents = [i.get("value") for i in res.get("identifier") or [] if isinstance(i, dict)]
        ext = next((v for v in idents if isinstance(v, str) and v.strip()), None) or (
            res.get("id") if isinstance(res.get("id"), str) else None)
        visit = res.get("appointmentType") or {}
        appt = Appointment(
            where=where, start=start, provider=provider, external_id=ext, provider_npi=provider_npi, mrn=mrn,
            first_name=first, last_name=last, date_of_birth=dob, referring_npi=referring_npi, status=status,
            visit_type=collapse(visit.get("text")) if isinstance(visit, dict) else None, address=address)
        (out.cancelled if status is not None and status.casefold() in skip else out.appointments).append(appt)
    return out

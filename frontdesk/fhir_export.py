"""What the front office knows about a patient, as FHIR R4 resources an EHR or a registry can import:
Patient, Coverage (one per insurance on file) and DocumentReference (one per filed form, card, letter and
statement), in one Bundle of type ``collection`` per patient, with the documents themselves beside it.

Why a kept library: every resource is built and validated by ``fhir.resources`` (its R4B models, which
read and write R4 Patient, Coverage and DocumentReference), so a field name or a cardinality we got wrong
fails here, not in the receiving system. Why these file names: a folder of exports travels (USB stick,
e-mail to the EHR vendor); names are opaque ids only (``pat-….json``, ``doc-…/original.pdf``), never a
patient's name or date of birth. Every patient exported and every file copied is an audit event.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk import audit
from frontdesk.db import Database
from frontdesk.db.models import Document, Letter, Patient, Statement, StoredObjectRow
from frontdesk.exceptions import FrontdeskError, StorageError

#: Identifier system of Frontdesk's own patient id (opaque, stable): how a receiving system finds the
#: record again on the next export.
PATIENT_ID_SYSTEM = "urn:frontdesk:patient-id"
DOCUMENT_ID_SYSTEM = "urn:frontdesk:document-id"
LOINC = "http://loinc.org"
#: What each kind of piece is, as LOINC document types where one fits (shown by EHRs as the document type).
DOCUMENT_TYPES: dict[str, tuple[str, str]] = {
    "intake_form": ("52460-3", "Patient registration form"),  # LOINC: "Patient information form" family
    "insurance_card": ("64290-0", "Insurance card"),
    "correspondence": ("34109-9", "Correspondence"),
    "letter": ("34109-9", "Letter to patient"),
    "statement": ("34109-9", "Patient statement"),
    "unknown": ("34109-9", "Document"),
}
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
RELATIONSHIPS = {"self": "self", "spouse": "spouse", "child": "child", "parent": "parent", "other": "other"}
GENDERS = {"F": "female", "M": "male", "X": "other", "U": "unknown"}
LANGUAGES = {"en": "English", "es": "Spanish"}


class ExportError(FrontdeskError):
    """Nothing to export (no such patient, no documents that day); nothing was written."""


@dataclass
class FhirExport:
    """What was written: one bundle per patient, and the document files the bundles point to."""

    bundles: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    resources: dict[str, int] = field(default_factory=dict)  # resource type -> count

    def as_dict(self) -> dict[str, Any]:
        return {"bundles": [str(p) for p in self.bundles], "files": [str(p) for p in self.files],
                "resources": dict(sorted(self.resources.items()))}


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as ``fhir.resources`` (R4B) reads and writes it back; a resource it refuses is our
    bug, reported by field and reason only (pydantic's own message would quote the values: patient data)."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    model = get_fhir_model_class(resource["resourceType"])
    try:
        parsed = model.model_validate(resource)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ExportError(f"{resource['resourceType']} {resource.get('id', '')}: not valid FHIR ({where})") from None
    out: dict[str, Any] = json.loads(parsed.model_dump_json())
    return out


def urn(resource_type: str, resource_id: str) -> str:
    """A stable ``urn:uuid:`` for a resource (Bundle.entry.fullUrl and the references between entries):
    the same record gets the same URN on every export, so a receiving system can update instead of add."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:frontdesk:{resource_type}/{resource_id}')}"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def patient_resource(patient: Patient) -> dict[str, Any]:
    """The Patient: name, birth date, sex, phone, e-mail, address and preferred language as on the record."""
    v = patient.value
    res: dict[str, Any] = {
        "resourceType": "Patient", "id": patient.id,
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": patient.id}],
        "name": [{"use": "official", "family": patient.last_name, "given": [patient.first_name]}],
        "birthDate": patient.date_of_birth.isoformat(),
    }
    sex = _text(v("patient.sex")).upper()[:1]
    if sex in GENDERS:
        res["gender"] = GENDERS[sex]
    telecom = [{"system": "phone", "value": _text(v("patient.phone"))} if _text(v("patient.phone")) else None,
               {"system": "email", "value": _text(v("patient.email"))} if _text(v("patient.email")) else None]
    if any(telecom):
        res["telecom"] = [t for t in telecom if t]
    parts = {k: _text(v(f"patient.address.{k}")) for k in ("street", "city", "state", "zip")}
    if any(parts.values()):
        address: dict[str, Any] = {"use": "home", "country": "US"}
        if parts["street"]:
            address["line"] = [parts["street"]]
        address.update({fhir: parts[k] for k, fhir in (("city", "city"), ("state", "state"), ("zip", "postalCode"))
                        if parts[k]})
        res["address"] = [address]
    from frontdesk.language import PREFERRED_LANGUAGE_KEY, language_of

    spoken = v(PREFERRED_LANGUAGE_KEY)
    if _text(spoken):
        code = language_of(spoken)
        res["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": code,
                                                          "display": LANGUAGES.get(code, code)}],
                                              "text": _text(spoken)}, "preferred": True}]
    return validated(res)


def coverage_resources(patient: Patient) -> list[dict[str, Any]]:
    """One Coverage per insurance on file (primary, secondary): payer, member ID, group, subscriber and
    relationship, in the order of benefits. None for a self-pay patient with no card on file."""
    v = patient.value
    out = []
    for order, which in enumerate(("primary", "secondary"), 1):
        payer, member = _text(v(f"insurance.{which}.payer_name")), _text(v(f"insurance.{which}.member_id"))
        if not (payer or member):
            continue
        res: dict[str, Any] = {
            "resourceType": "Coverage", "id": f"{patient.id}-{which}", "status": "active", "order": order,
            "beneficiary": {"reference": urn("Patient", patient.id)},
            "payor": [{"display": payer or "unknown payer"}],
        }
        if member:
            res["subscriberId"] = member
            res["identifier"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                      "code": "MB", "display": "Member Number"}]},
                                  "value": member}]
        payer_id = _text(v(f"insurance.{which}.payer_id"))
        if payer_id:
            res["payor"][0]["identifier"] = {"value": payer_id}
        group = _text(v(f"insurance.{which}.group_number"))
        if group:
            res["class"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                                  "code": "group"}]}, "value": group}]
        relation = RELATIONSHIPS.get(_text(v(f"insurance.{which}.relationship_to_patient")).lower())
        if relation:
            res["relationship"] = {"coding": [{"system": SUBSCRIBER_RELATIONSHIP, "code": relation}]}
            if relation == "self":
                res["subscriber"] = {"reference": urn("Patient", patient.id)}
        subscriber = _text(v(f"insurance.{which}.subscriber_name"))
        if subscriber and relation != "self":
            res["subscriber"] = {"display": subscriber}
        out.append(validated(res))
    return out


@dataclass
class _Piece:
    """A filed document, letter or statement: its stored object and what it is."""

    id: str
    kind: str
    title: str
    created: datetime
    obj: StoredObjectRow


def document_reference(patient_id: str, piece: _Piece, relative: str, data: bytes) -> dict[str, Any]:
    """A DocumentReference pointing at the file copied beside the bundle (``relative``), with its size,
    SHA-1 (FHIR's Attachment.hash) and type; the title is the kind of document, never the file's name."""
    code, display = DOCUMENT_TYPES.get(piece.kind, DOCUMENT_TYPES["unknown"])
    created = piece.created if piece.created.tzinfo else piece.created.replace(tzinfo=UTC)
    return validated({
        "resourceType": "DocumentReference", "id": piece.id, "status": "current",
        "identifier": [{"system": DOCUMENT_ID_SYSTEM, "value": piece.id}],
        "type": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": piece.title},
        "subject": {"reference": urn("Patient", patient_id)},
        "date": created.isoformat(timespec="seconds"),
        "content": [{"attachment": {
            "contentType": piece.obj.content_type, "url": relative, "size": len(data),
            "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(), "title": piece.title,
            "creation": created.isoformat(timespec="seconds")}}],
    })


def _pieces(s: Session, patient_id: str, since: datetime | None, until: datetime | None) -> list[_Piece]:
    """The patient's filed originals, letters and statements (within [since, until) when given)."""
    out: list[_Piece] = []
    docs = s.scalars(select(Document).where(Document.patient_id == patient_id).order_by(Document.received_at))
    for doc in docs:
        if since is not None and until is not None and not since <= _aware(doc.received_at) < until:
            continue
        obj = s.scalars(select(StoredObjectRow).where(StoredObjectRow.document_id == doc.id,
                                                      StoredObjectRow.role == "original",
                                                      StoredObjectRow.state != "pending")).first()
        if obj is not None:
            kind = doc.document_type or "unknown"
            title = DOCUMENT_TYPES.get(kind, DOCUMENT_TYPES["unknown"])[1] + (f" ({doc.form})" if doc.form else "")
            out.append(_Piece(doc.id, kind, title, doc.received_at, obj))
    def within(when: datetime) -> bool:
        return since is None or until is None or since <= _aware(when) < until

    for letter in s.scalars(select(Letter).where(Letter.patient_id == patient_id).order_by(Letter.created_at)):
        obj = s.scalars(select(StoredObjectRow).where(StoredObjectRow.letter_id == letter.id,
                                                      StoredObjectRow.role == "letter",
                                                      StoredObjectRow.state != "pending")).first()
        if obj is not None and within(letter.created_at):
            out.append(_Piece(letter.id, "letter", f"{DOCUMENT_TYPES['letter'][1]} ({letter.kind})",
                              letter.created_at, obj))
    for stm in s.scalars(select(Statement).where(Statement.patient_id == patient_id).order_by(Statement.created_at)):
        obj = s.scalars(select(StoredObjectRow).where(StoredObjectRow.statement_id == stm.id,
                                                      StoredObjectRow.role == "statement",
                                                      StoredObjectRow.state != "pending")).first()
        if obj is not None and within(stm.created_at):
            out.append(_Piece(stm.id, "statement", DOCUMENT_TYPES["statement"][1], stm.created_at, obj))
    return out


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _write(path: Path, data: bytes) -> None:
    """A file only its owner reads (0600), in folders only its owner opens (0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def export_fhir(db: Database, storage: Any, dest: Path, *, patient_id: str | None = None,
                day: date | None = None, tz: tzinfo = UTC) -> FhirExport:
    """Write ``dest/<patient id>.json`` (a Bundle: Patient, Coverage, DocumentReference) and each document
    it points to at ``dest/<piece id>/<file>``, for one patient (all of their documents) or for a day (every
    patient with a document, letter or statement of that day in the practice's zone ``tz``, and those
    pieces). Stored copies are checked against their SHA-256 before they are written."""
    from frontdesk.storage import sha256_bytes

    if (patient_id is None) == (day is None):
        raise ValueError("export a patient or a day")
    since = until = None
    if day is not None:
        since = datetime.combine(day, time(0), tz).astimezone(UTC)
        until = datetime.combine(date.fromordinal(day.toordinal() + 1), time(0), tz).astimezone(UTC)
    result = FhirExport()
    with db.begin() as s:
        if patient_id is not None:
            if s.get(Patient, patient_id) is None:
                raise ExportError(f"no patient {patient_id}")
            ids = [patient_id]
        else:
            assert since is not None and until is not None
            window = since, until  # aware UTC, as the database's times are
            ids = sorted({*s.scalars(select(Document.patient_id).where(Document.patient_id.is_not(None),
                                                                       Document.received_at >= window[0],
                                                                       Document.received_at < window[1])),
                          *s.scalars(select(Letter.patient_id).where(Letter.patient_id.is_not(None),
                                                                     Letter.created_at >= window[0],
                                                                     Letter.created_at < window[1])),
                          *s.scalars(select(Statement.patient_id).where(Statement.patient_id.is_not(None),
                                                                        Statement.created_at >= window[0],
                                                                        Statement.created_at < window[1]))} - {None})
            if not ids:
                raise ExportError(f"no documents, letters or statements on {day}")
    for pid in ids:
        with db.begin() as s:
            patient = s.get(Patient, pid)
            assert patient is not None
            entries = [patient_resource(patient), *coverage_resources(patient)]
            pieces = _pieces(s, pid, since, until)
            wanted = [(p, p.obj.key, p.obj.sha256) for p in pieces]
        for piece, key, sha in wanted:
            data = storage.get_bytes(key)
            if sha is not None and sha256_bytes(data) != sha:
                raise StorageError(f"stored copy of {key} does not match its record; not exported")
            relative = f"{piece.id}/{key.rsplit('/', 1)[-1]}"
            _write(dest / relative, data)
            result.files.append(dest / relative)
            entries.append(document_reference(pid, piece, relative, data))
            with db.begin() as s:
                audit.record(s, "export", "object", key, patient_id=pid, detail="fhir")
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                  "entry": [{"fullUrl": urn(e["resourceType"], e["id"]), "resource": e}
                            for e in entries]}
        path = dest / f"{pid}.json"
        _write(path, json.dumps(validated(bundle), indent=2, ensure_ascii=False).encode())
        result.bundles.append(path)
        for e in entries:
            result.resources[e["resourceType"]] = result.resources.get(e["resourceType"], 0) + 1
        with db.begin() as s:
            audit.record(s, "export", "patient", pid, patient_id=pid, detail="fhir bundle")
    return result

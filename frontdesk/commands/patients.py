"""``frontdesk patients find|show|export``: look a patient up, read the record, copy the documents out.

Every use is an audit event (a search per patient found, a read, an export per file): staff see patient
data here by design, and the practice must be able to show who did.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from frontdesk.commands.help import EXAMPLE_PATIENT, examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("patients", help="find patients, show a record, export a patient's documents",
                       **examples(
        ('frontdesk patients find "maria garcia" --dob 1984-03-07', "patients with both names and this birth date"),
        (f"frontdesk patients show {EXAMPLE_PATIENT}", "one patient's record: values, documents, open flags, letters"),
        (f"frontdesk patients export {EXAMPLE_PATIENT} exported", "copy the patient's documents and letters into ./exported")))
    psub = p.add_subparsers(dest="patients_command", metavar="ACTION")
    psub.required = True
    f = psub.add_parser("find", help="patients whose name contains every word of NAME")
    f.add_argument("name", metavar="NAME")
    f.add_argument("--dob", metavar="YYYY-MM-DD", help="date of birth")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=run_find)
    s = psub.add_parser("show", help="a patient's record: current values, documents, open flags, letters")
    s.add_argument("patient_id", metavar="ID")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run_show)
    e = psub.add_parser("export", help="copy a patient's filed documents and letters into a folder")
    e.add_argument("patient_id", metavar="ID")
    e.add_argument("dest", type=Path, metavar="DIR")
    e.set_defaults(handler=run_export)


def _dob(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit("frontdesk: --dob: use YYYY-MM-DD") from None


def run_find(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.records import find_patients

    dob = _dob(args.dob)
    db = open_database(ctx.settings)
    with db.begin() as s:
        hits = [{"id": p.id, "first_name": p.first_name, "last_name": p.last_name,
                 "date_of_birth": p.date_of_birth.isoformat()} for p in find_patients(s, args.name, dob)]
    if args.json:
        print(json.dumps(hits, indent=2, ensure_ascii=False))
    else:
        for h in hits:
            print(f"{h['id']:<18} {h['last_name']}, {h['first_name']}  born {h['date_of_birth']}")
        print(f"{len(hits)} patients found")
    return ExitCode.ok if hits else ExitCode.general


def run_show(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.records import show_patient

    db = open_database(ctx.settings)
    with db.begin() as s:
        view = show_patient(s, args.patient_id)
        if view is None:
            print(f"frontdesk: no patient {args.patient_id}", file=sys.stderr)
            return ExitCode.general
        p = view.patient
        out: dict[str, Any] = {
            "id": p.id, "first_name": p.first_name, "last_name": p.last_name,
            "date_of_birth": p.date_of_birth.isoformat(),
            "fields": view.fields,
            "documents": [{"id": d.id, "document_type": d.document_type, "outcome": d.outcome, "state": d.state,
                           "received_at": d.received_at.isoformat(timespec="seconds"),
                           "objects": [o.key for o in d.objects]} for d in view.documents],
            "open_flags": [{"document_id": f.document_id, "code": f.code, "severity": f.severity,
                            "field": f.field, "message": f.message} for f in view.open_flags],
            "letters": [{"id": lt.id, "kind": lt.kind, "status": lt.status, "document_id": lt.document_id,
                         "storage_key": lt.storage_key,
                         "created_at": lt.created_at.isoformat(timespec="seconds")} for lt in view.letters],
        }
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return ExitCode.ok
    print(f"{out['id']}  {p.last_name}, {p.first_name}  born {out['date_of_birth']}")
    for key, fv in out["fields"].items():
        value = fv["value"]
        shown = "" if value is None else ("yes" if value is True else "no" if value is False else value)
        print(f"  {key:<45} {shown!s:<32} ({fv['source_document']})")
    print(f"Documents ({len(out['documents'])}):")
    for d in out["documents"]:
        print(f"  {d['id']}  {d['received_at']}  {d['document_type'] or '-'}  {d['outcome'] or d['state']}")
    print(f"Open flags ({len(out['open_flags'])}):")
    for f in out["open_flags"]:
        print(f"  [{f['severity']}] {f['code']}: {f['message']}  ({f['document_id']})")
    print(f"Letters ({len(out['letters'])}):")
    for lt in out["letters"]:
        print(f"  {lt['id']}  {lt['kind']}  {lt['status']}  {lt['created_at']}")
    return ExitCode.ok


def run_export(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.records import export_patient
    from frontdesk.storage import open_storage

    db = open_database(ctx.settings)
    written = export_patient(db, open_storage(ctx.settings), args.patient_id, args.dest)
    if written is None:
        print(f"frontdesk: no patient {args.patient_id}", file=sys.stderr)
        return ExitCode.general
    for path in written:
        print(path)
    print(f"{len(written)} files exported to {args.dest}")
    return ExitCode.ok

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
        (f"frontdesk patients export {EXAMPLE_PATIENT} exported", "copy the patient's documents and letters into ./exported"),
        (f"frontdesk patients merge {EXAMPLE_PATIENT} pat-0b1c2d3e4f50 --preview",
         "(needs two records of one person) what would move onto the kept record"),
        ("frontdesk patients unmerge 3", "(needs a merge's number from patients show) undo that merge"),
        (f"frontdesk patients correct {EXAMPLE_PATIENT} patient.phone",
         "(needs the right value) read from standard input: echo 2175550199 | frontdesk patients correct ...")))
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
    e = psub.add_parser("export", help="copy a patient's filed documents and letters into a folder", **examples(
        (f"frontdesk patients export {EXAMPLE_PATIENT} exported", "the patient's filed objects, in ./exported"),
        (f"frontdesk patients export --fhir {EXAMPLE_PATIENT} fhir",
         "FHIR R4: fhir/<id>.json (Patient, Coverage, DocumentReference) and the documents it points to"),
        ("frontdesk patients export --fhir --day today fhir-today",
         "the same for every patient with a document, letter or statement filed today")))
    e.add_argument("patient_id", metavar="ID", nargs="?", help="the patient's id (not with --day)")
    e.add_argument("dest", type=Path, metavar="DIR")
    e.add_argument("--fhir", action="store_true",
                   help="write FHIR R4 resources (a Bundle per patient) instead of the plain copy")
    e.add_argument("--day", metavar="YYYY-MM-DD", help="with --fhir: every patient with something filed that day "
                   "(also today, yesterday)")
    e.add_argument("--json", action="store_true", help="with --fhir: print what was written as JSON")
    e.set_defaults(handler=run_export)
    m = psub.add_parser("merge", help="merge OTHER into KEPT (two records of one patient); reversible")
    m.add_argument("kept_id", metavar="KEPT")
    m.add_argument("other_id", metavar="OTHER")
    m.add_argument("--preview", action="store_true", help="only show what would move")
    m.set_defaults(handler=run_merge)
    um = psub.add_parser("unmerge", help="undo a merge (its id is printed by merge and on the patient page)")
    um.add_argument("merge_id", metavar="MERGE")
    um.set_defaults(handler=run_unmerge)
    c = psub.add_parser("correct", help="correct one value of a patient's record (the value is read from stdin)")
    c.add_argument("patient_id", metavar="ID")
    c.add_argument("key", metavar="FIELD", help="field key from config/fields.yaml")
    c.set_defaults(handler=run_correct)


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
        from sqlalchemy import select

        from frontdesk.db.models import InsuranceCard

        # Which coverage (primary, secondary) each filed card is, its side, and for a back its front.
        out["insurance_cards"] = [
            {"document_id": c.document_id, "rank": c.rank, "side": c.side, "front_document_id": c.front_document_id}
            for c in s.scalars(select(InsuranceCard).where(InsuranceCard.patient_id == p.id)
                               .order_by(InsuranceCard.filed_at, InsuranceCard.document_id))]
        from frontdesk.checks.coverage import coverage_on_file  # the payer's latest eligibility answer

        cov = coverage_on_file(s, [p.id]).get(p.id)
        out["coverage"] = None if cov is None else {
            "status": cov.status, "checked_on": cov.checked_on.isoformat(), "plan": cov.plan_name,
            "copay": str(cov.copay) if cov.copay is not None else None,
            "deductible_remaining": str(cov.deductible_remaining) if cov.deductible_remaining is not None else None,
            "reasons": list(cov.reasons)}
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return ExitCode.ok
    print(f"{out['id']}  {p.last_name}, {p.first_name}  born {out['date_of_birth']}")
    for key, fv in out["fields"].items():
        value = fv["value"]
        shown = "" if value is None else ("yes" if value is True else "no" if value is False else value)
        print(f"  {key:<45} {shown!s:<32} ({fv['source_document']})")
    if out["coverage"]:
        c = out["coverage"]
        print(f"Coverage: {c['status'].replace('_', ' ')} (checked {c['checked_on']})"
              + (f", {c['plan']}" if c["plan"] else "") + (f", copay ${c['copay']}" if c["copay"] else "")
              + (f", deductible remaining ${c['deductible_remaining']}" if c["deductible_remaining"] else "")
              + (f": {'; '.join(c['reasons'])}" if c["reasons"] else ""))
    print(f"Documents ({len(out['documents'])}):")
    for d in out["documents"]:
        print(f"  {d['id']}  {d['received_at']}  {d['document_type'] or '-'}  {d['outcome'] or d['state']}")
    if out["insurance_cards"]:
        print(f"Insurance cards ({len(out['insurance_cards'])}):")
        for c in out["insurance_cards"]:
            print(f"  {c['document_id']}  {c['rank']}  {c['side']}"
                  + (f"  (back of {c['front_document_id']})" if c["front_document_id"] else ""))
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

    if args.fhir:
        return run_export_fhir(args, ctx)
    if args.day or args.json or not args.patient_id:
        print("frontdesk: patients export: give a patient ID (--day and --json go with --fhir)", file=sys.stderr)
        return ExitCode.bad_input
    db = open_database(ctx.settings)
    written = export_patient(db, open_storage(ctx.settings), args.patient_id, args.dest)
    if written is None:
        print(f"frontdesk: no patient {args.patient_id}", file=sys.stderr)
        return ExitCode.general
    for path in written:
        print(path)
    print(f"{len(written)} files exported to {args.dest}")
    return ExitCode.ok


def run_export_fhir(args: argparse.Namespace, ctx: Any) -> int:
    from datetime import timedelta

    from frontdesk.checks.schedule import practice_zone, settings_zone, today_in
    from frontdesk.db import open_database
    from frontdesk.fhir_export import ExportError, export_fhir
    from frontdesk.storage import open_storage

    if (args.patient_id is None) == (args.day is None):
        print("frontdesk: patients export --fhir: give a patient ID or --day, one of them", file=sys.stderr)
        return ExitCode.bad_input
    tz = practice_zone(settings_zone(ctx.settings))
    day = None
    if args.day is not None:
        words = {"today": 0, "yesterday": -1}
        try:
            day = (today_in(tz) + timedelta(days=words[args.day]) if args.day in words
                   else date.fromisoformat(args.day))
        except ValueError:
            print(f"frontdesk: --day: {args.day!r} is not YYYY-MM-DD, today or yesterday", file=sys.stderr)
            return ExitCode.bad_input
    try:
        done = export_fhir(open_database(ctx.settings), open_storage(ctx.settings), args.dest,
                           patient_id=args.patient_id, day=day, tz=tz)
    except ExportError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return ExitCode.general
    if args.json:
        print(json.dumps(done.as_dict(), indent=2))
        return ExitCode.ok
    for path in done.bundles:
        print(path)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(done.resources.items()))
    print(f"{len(done.bundles)} FHIR bundles ({counts}) and {len(done.files)} documents written to {args.dest}")
    return ExitCode.ok


def run_merge(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        if args.preview:
            pv = actions.merge_preview(s, args.kept_id, args.other_id)
            print(f"would move {len(pv.documents)} documents, {len(pv.letters)} letters, {len(pv.statements)} "
                  f"statements, {len(pv.flags)} flags; fill {', '.join(pv.fields_filled) or 'no fields'}; "
                  f"differing (kept stays): {', '.join(pv.fields_differing) or 'none'}")
            return ExitCode.ok
        merge = actions.merge_patients(s, args.kept_id, args.other_id)
        print(f"{args.other_id} merged into {args.kept_id} ({merge.id}; undo with: frontdesk patients unmerge {merge.id})")
    return ExitCode.ok


def run_unmerge(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        merge = actions.unmerge(s, args.merge_id)
        print(f"merge {merge.id} undone: {merge.merged_id} is a record of its own again")
    return ExitCode.ok


def run_correct(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database
    from frontdesk.fields import load_vocabulary

    value = sys.stdin.readline().rstrip("\r\n")
    vocab = load_vocabulary(ctx.settings.fields_file)
    with open_database(ctx.settings).begin() as s:
        actions.correct_value(s, args.patient_id, args.key, value, vocab)
    print(f"{args.patient_id}: {args.key} corrected")
    return ExitCode.ok

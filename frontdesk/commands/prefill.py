"""``frontdesk prefill PATIENT FORM``: a form filled with what the record knows, for the visit.

FORM is the name of a fillable PDF in ``templates/forms/`` (e.g. ``new_patient_intake``). Signatures
and consents are left for the patient. The file is written owner-readable only, named by patient id
and form (no patient data in the name), and the export is audited.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from frontdesk.commands.help import EXAMPLE_PATIENT, examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("prefill", help="fill a form from templates/forms with what the record already knows",
                       **examples(
        ("frontdesk prefill --list", "the forms that can be prefilled"),
        (f"frontdesk prefill {EXAMPLE_PATIENT} new_patient_intake --out prefilled.pdf", "a new-patient form filled from one patient's record")),
                       description="Fill a form with the patient's current record for them to check and "
                                   "complete at the visit.")
    p.add_argument("patient_id", metavar="PATIENT", nargs="?", help="patient id (see frontdesk patients find)")
    p.add_argument("form", metavar="FORM", nargs="?", help="form name, e.g. new_patient_intake (see --list)")
    p.add_argument("--list", action="store_true", help="list the forms that can be prefilled, then exit")
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write it (default: ./FORM-PATIENT.pdf)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.letters.prefill import find_form, prefill_form

    settings = ctx.settings
    if args.list:
        return list_forms(settings, as_json=args.json)
    if not args.patient_id or not args.form:
        print("frontdesk prefill: give a patient id and a form name (see frontdesk prefill --list)", file=sys.stderr)
        return ExitCode.bad_input
    find_form(settings, args.form)  # a bad form name fails before the database is opened
    out = args.out or Path.cwd() / f"{args.form}-{args.patient_id}.pdf"
    result = prefill_form(open_database(settings), settings, args.patient_id, args.form, out)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"wrote {result.out}")
        print(f"  {len(result.filled)} field(s) filled from the record, {len(result.blank)} left blank "
              f"(not on record), {len(result.for_patient)} for the patient to complete (signature, consent)")
    return ExitCode.ok


def list_forms(settings: Any, *, as_json: bool) -> int:
    """The practice's fillable forms by name (what FORM may be), with the folder each comes from."""
    from frontdesk.letters.prefill import available_forms

    forms = available_forms(settings)
    if as_json:
        print(json.dumps([{"form": name, "file": str(path)} for name, path in sorted(forms.items())], indent=2))
    elif not forms:
        print("no fillable forms found in forms_dirs")
    else:
        for name, path in sorted(forms.items()):
            print(f"{name:<32} {path}")
    return ExitCode.ok

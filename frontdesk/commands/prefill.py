"""``frontdesk prefill PATIENT FORM``: a form filled with what the record knows, for the visit.

FORM is the name of a fillable PDF in ``templates/forms/`` (e.g. ``new_patient_intake``). Signatures
and consents are left for the patient. The file is written owner-readable only, named by patient id
and form (no patient data in the name), and the export is audited.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("prefill", help="fill a form from templates/forms with what the record already knows",
                       description="Fill a form with the patient's current record for them to check and "
                                   "complete at the visit.")
    p.add_argument("patient_id", metavar="PATIENT", help="patient id (see frontdesk patients find)")
    p.add_argument("form", metavar="FORM", help="form name, e.g. new_patient_intake (see --list)")
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write it (default: ./FORM-PATIENT.pdf)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.letters.prefill import find_form, prefill_form

    settings = ctx.settings
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

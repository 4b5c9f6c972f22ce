"""``frontdesk flags list|conflict|dismiss``: open problems, and closing one with a reason (the console's
Dismiss button; same core function and audit events, :func:`frontdesk.actions.dismiss_flag`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from frontdesk.commands.help import EXAMPLE_PATIENT, examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("flags", help="open problems on documents and patients: list, dismiss, settle conflicts", **examples(
        ("frontdesk flags list", "every open flag, oldest first"),
        (f"frontdesk flags list --patient {EXAMPLE_PATIENT} --json", "one patient's open flags"),
        ('frontdesk flags dismiss 12 --reason "patient called, card on file"',
         "(needs a flag's number from flags list) close it with the reason"),
        ("frontdesk flags conflict 14 --keep card",
         "(needs a card/record conflict's flag number) keep the card's value on the record")))
    psub = p.add_subparsers(dest="flags_command", metavar="ACTION")
    psub.required = True
    ls = psub.add_parser("list", help="open flags, oldest first")
    ls.add_argument("--document", metavar="DOC")
    ls.add_argument("--patient", metavar="ID")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)
    c = psub.add_parser("conflict", help="settle a card/record conflict: keep the card's or the record's value")
    c.add_argument("flag_id", type=int, metavar="FLAG")
    c.add_argument("--keep", choices=("card", "record"), required=True)
    c.set_defaults(handler=run_conflict)
    d = psub.add_parser("dismiss", help="close a flag that needs no action, with a reason")
    d.add_argument("flag_id", type=int, metavar="FLAG")
    d.add_argument("--reason", required=True)
    d.set_defaults(handler=run_dismiss)


def run_list(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        rows = [{"id": f.id, "document_id": f.document_id, "patient_id": f.patient_id, "code": f.code,
                 "severity": f.severity, "field": f.field, "message": f.message}
                for f in actions.open_flags(s, document_id=args.document, patient_id=args.patient)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for r in rows:
            print(f"{r['id']:>6}  {r['document_id'] or '-':<22} {r['severity']:<7} {r['message']}")
        print(f"{len(rows)} open flags")
    return ExitCode.ok


def run_dismiss(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        flag = actions.dismiss_flag(s, args.flag_id, args.reason)
        print(f"flag {flag.id} dismissed")
    return ExitCode.ok


def run_conflict(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database
    from frontdesk.fields import load_vocabulary

    vocab = load_vocabulary(ctx.settings.fields_file)
    with open_database(ctx.settings).begin() as s:
        flag = actions.resolve_conflict(s, args.flag_id, args.keep, vocab)
        print(f"flag {flag.id} resolved: kept the {args.keep}'s value")
    return ExitCode.ok

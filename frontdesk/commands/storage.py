"""``frontdesk storage verify|flush``: prove that every recorded object is in storage, intact, and that
nothing in storage lacks a record; send what waits in the spool. No Prefect."""

from __future__ import annotations

import argparse
import json
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode

_SECTIONS = (
    ("missing", "recorded but not in storage"),
    ("mismatched", "SHA-256 differs from the record"),
    ("unencrypted", "stored without server-side encryption"),
    ("orphans", "in storage without a record"),
    ("pending_objects", "planned by an interrupted run (the next run completes it)"),
    ("spooled", "waiting in the spool (run `frontdesk storage flush`)"),
    ("spool_lost", "recorded as spooled but not in the spool"),
    ("pending_documents", "documents not completed (the next run completes them)"),
    ("letters_due", "documents whose letters are not filed yet (the next run files them)"),
)


def register(sub: Any) -> None:
    p = sub.add_parser("storage", help="check document storage against the records; send spooled files",
                       **examples(
        ("frontdesk storage verify", "check every recorded file is in storage and unchanged; list strays"),
        ("frontdesk storage flush --json", "send files held in the spool while storage was down")))
    ssub = p.add_subparsers(dest="storage_command", metavar="ACTION")
    ssub.required = True
    v = ssub.add_parser("verify", help="check every recorded object exists and matches its SHA-256; list orphans")
    v.add_argument("--deep", action="store_true", help="S3: download and hash every object too")
    v.add_argument("--json", action="store_true")
    v.set_defaults(handler=run_verify)
    f = ssub.add_parser("flush", help="send spooled files to storage and finish interrupted documents")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=run_flush)


def run_verify(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.db import open_database
    from frontdesk.records import verify_storage
    from frontdesk.storage import open_storage

    db = open_database(ctx.settings)
    report = verify_storage(db, open_storage(ctx.settings), deep=args.deep)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for name, what in _SECTIONS:
            items = getattr(report, name)
            if items:
                print(f"{len(items)} {what}:")
                for item in items:
                    print(f"  {item}")
        print(f"{report.checked} objects checked: " + ("all present and intact, no orphans" if report.ok
                                                        else "PROBLEMS FOUND"))
    return ExitCode.ok if report.ok else ExitCode.storage


def run_flush(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.pipeline import Pipeline

    pipeline = Pipeline(ctx.settings)
    report = pipeline.recover()
    if pipeline.letters_due:
        pipeline.send_letters([])
    out = {"spool_sent": report.spool_sent, "spool_waiting": report.spool_waiting,
           "documents_completed": report.documents_completed,
           "documents_still_pending": report.documents_still_pending, "letters_filed": report.letters_due}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"sent {report.spool_sent} spooled objects; {report.spool_waiting} still waiting")
        print(f"completed {report.documents_completed} interrupted documents; "
              f"{report.documents_still_pending} wait for their file; {report.letters_due} letters filed")
    waiting = report.spool_waiting or report.documents_still_pending
    return ExitCode.storage if waiting else ExitCode.ok

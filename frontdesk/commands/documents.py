"""``frontdesk documents failed|unmatched|attach|retry|dismiss``: failed files and unmatched cards and letters,
with the same core functions and audit events as the console (:mod:`frontdesk.actions`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from frontdesk.commands.help import EXAMPLE_PATIENT, examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("documents", help="failed files and unmatched cards or letters: list, attach, retry, dismiss",
                       **examples(
        ("frontdesk documents failed", "files that could not be read, with the reason"),
        ("frontdesk documents unmatched --json", "insurance cards and letters not matched to a patient"),
        (f"frontdesk documents attach doc-0123456789abcdef {EXAMPLE_PATIENT}",
         "(needs an unmatched document's id) file that card or letter to the patient"),
        ('frontdesk documents dismiss doc-0123456789abcdef --reason "blank page"',
         "(needs a failed document's id) take it off the failed list"),
        ("frontdesk documents retry doc-0123456789abcdef",
         "(needs a failed document's id) read it again from its filed original and file it once")))
    psub = p.add_subparsers(dest="documents_command", metavar="ACTION")
    psub.required = True
    f = psub.add_parser("failed", help="files that could not be read, newest first, with the reason")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=run_failed)
    u = psub.add_parser("unmatched", help="insurance cards and letters not matched to a patient")
    u.add_argument("--json", action="store_true")
    u.set_defaults(handler=run_unmatched)
    a = psub.add_parser("attach", help="file an unmatched card or letter to a patient")
    a.add_argument("document_id", metavar="DOC")
    a.add_argument("patient_id", metavar="PATIENT")
    a.set_defaults(handler=run_attach)
    r = psub.add_parser("retry", help="read a failed file again from its filed original and file it once")
    r.add_argument("document_id", metavar="DOC")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=run_retry)
    d = psub.add_parser("dismiss", help="take a failed file off the failed list, with a reason")
    d.add_argument("document_id", metavar="DOC")
    d.add_argument("--reason", required=True)
    d.set_defaults(handler=run_dismiss)


def run_failed(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        rows = [{"id": d.id, "received_at": d.received_at.isoformat(timespec="seconds"), "error": d.error}
                for d in actions.failed_documents(s)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['id']}  {r['received_at']}  {r['error'] or '-'}")
        print(f"{len(rows)} failed files")
    return ExitCode.ok


def run_unmatched(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions, audit
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        rows = [{"id": d.id, "document_type": d.document_type, "received_at": d.received_at.isoformat(timespec="seconds"),
                 "reason": f.message} for d, f in actions.unmatched_documents(s)]
        audit.record(s, "read", "document", None, detail=f"{len(rows)} unmatched documents listed")
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for r in rows:
            print(f"{r['id']}  {r['received_at']}  {r['document_type'] or '-':<15} {r['reason']}")
        print(f"{len(rows)} unmatched")
    return ExitCode.ok


def run_attach(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database
    from frontdesk.fields import load_vocabulary

    vocab = load_vocabulary(ctx.settings.fields_file)
    with open_database(ctx.settings).begin() as s:
        actions.attach_document(s, args.document_id, args.patient_id, vocab)
    print(f"{args.document_id} filed to {args.patient_id}")
    return ExitCode.ok


def run_dismiss(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        actions.dismiss_failed(s, args.document_id, args.reason)
    print(f"{args.document_id} dismissed")
    return ExitCode.ok


def run_retry(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import actions
    from frontdesk.pipeline import Pipeline

    outcome = actions.retry_failed(Pipeline(ctx.settings), args.document_id)
    if args.json:
        print(json.dumps(outcome.__dict__, indent=2))
    elif outcome.status == "failed":
        print(f"{args.document_id} still cannot be read: {outcome.error}")
    else:
        print(f"{args.document_id} read again: {outcome.status}; {len(outcome.letters)} letter(s)")
    return ExitCode.ok if outcome.status != "failed" else ExitCode.bad_input

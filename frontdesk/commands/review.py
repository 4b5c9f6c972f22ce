"""``frontdesk review list|show|decide``: the review queue for the practice's IT person, the same core
operations and audit events as the console's review page (:mod:`frontdesk.review_queue`).

Corrected values are read from standard input (one line per ``--correct KEY``, in order), never from
the command line, where they would stay in shell history and the process list.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("review", help="documents waiting for a person: list, show, decide", **examples(
        ("frontdesk review list", "documents waiting for review, oldest first"),
        ("frontdesk review show doc-0123456789abcdef", "(needs a document's id from review list) what needs a decision"),
        ("frontdesk review decide doc-0123456789abcdef --accept patient.last_name",
         "(needs a document's id from review list) keep what was read, re-validate and file")))
    psub = p.add_subparsers(dest="review_command", metavar="ACTION")
    psub.required = True
    ls = psub.add_parser("list", help="documents waiting for review, oldest first (overdue marked)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)
    sh = psub.add_parser("show", help="the fields of one document that need a decision, and why")
    sh.add_argument("document_id", metavar="DOC")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(handler=run_show)
    d = psub.add_parser("decide", help="accept, correct or mark fields not on the form; re-validates and files")
    d.add_argument("document_id", metavar="DOC")
    d.add_argument("--accept", action="append", default=[], metavar="KEY", help="keep what was read")
    d.add_argument("--absent", action="append", default=[], metavar="KEY", help="the form has no value here")
    d.add_argument("--correct", action="append", default=[], metavar="KEY",
                   help="replace with a value read from stdin (one line per --correct, in order)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=run_decide)


def _deadline(ctx: Any) -> timedelta:
    return timedelta(hours=ctx.settings.console.review_deadline_hours)


def run_list(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import review_queue
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        rows = review_queue.queue(s, deadline=_deadline(ctx))
    out: list[dict[str, Any]] = [{"document_id": r.document_id, "received_at": r.received_at.isoformat(timespec="seconds"),
            "document_type": r.document_type, "patient_id": r.patient_id, "open_flags": r.open_flags,
            "overdue": r.overdue} for r in rows]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in out:
            print(f"{r['document_id']}  {r['received_at']}  {r['document_type'] or '-':<15} "
                  f"{r['patient_id'] or 'not matched':<16} {r['open_flags']} flags{'  OVERDUE' if r['overdue'] else ''}")
        print(f"{len(out)} documents waiting, {sum(r['overdue'] for r in out)} overdue")
    return ExitCode.ok


def run_show(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import review_queue
    from frontdesk.db import open_database
    from frontdesk.fields import load_vocabulary

    vocab = load_vocabulary(ctx.settings.fields_file)
    with open_database(ctx.settings).begin() as s:
        item = review_queue.load_item(s, args.document_id, vocab, deadline=_deadline(ctx))
    fields: list[dict[str, Any]] = [{"key": f.key, "label": f.label, "value": f.value, "confidence": f.confidence, "reasons": f.reasons}
              for f in item.uncertain]
    if args.json:
        print(json.dumps({"document_id": item.document_id, "overdue": item.overdue, "fields": fields,
                          "other": item.other_reasons}, indent=2, ensure_ascii=False))
        return ExitCode.ok
    for f in fields:
        print(f"{f['key']:<45} {f['value']!s:<28} {round(f['confidence'] * 100)}%  {'; '.join(f['reasons'])}")
    for r in item.other_reasons:
        print(f"- {r}")
    return ExitCode.ok


def run_decide(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import review_queue
    from frontdesk.pipeline import Pipeline

    decisions: dict[str, review_queue.Decision] = {}
    for key in args.accept:
        decisions[key] = review_queue.Decision("accept")
    for key in args.absent:
        decisions[key] = review_queue.Decision("absent")
    for key in args.correct:
        line = sys.stdin.readline()
        if not line:
            print(f"frontdesk: no value on stdin for {key}", file=sys.stderr)
            return ExitCode.bad_input
        decisions[key] = review_queue.Decision("correct", line.rstrip("\r\n"))
    if not decisions:
        print("frontdesk: nothing decided: give --accept, --correct or --absent", file=sys.stderr)
        return ExitCode.bad_input
    out = review_queue.decide(Pipeline(ctx.settings), args.document_id, decisions)
    summary = {"document_id": out.document_id, "status": out.status, "changed": out.changed,
               "letters_voided": out.letters_voided, "letters_written": out.letters_written}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{out.document_id}: {out.status}; {len(out.changed)} changed, {len(out.letters_voided)} letters "
              f"withdrawn, {len(out.letters_written)} written")
    return ExitCode.ok

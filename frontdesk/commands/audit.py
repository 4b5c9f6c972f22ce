"""``frontdesk audit [--patient ID] [--since DATE]``: who created, read, exported or changed what.
Events hold ids and codes only, so the listing can be handed to an auditor as it is."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from frontdesk.commands.help import EXAMPLE_PATIENT, examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="list audit events (who touched which record, and when)",
                       **examples(
        ("frontdesk audit --since 2026-01-01 --limit 20", "the first 20 events since New Year"),
        (f"frontdesk audit --patient {EXAMPLE_PATIENT} --json", "everything done with one patient's record, as JSON")))
    p.add_argument("--patient", metavar="ID", help="only events about this patient (pat-...)")
    p.add_argument("--since", metavar="DATE", help="only events at or after DATE (YYYY-MM-DD or ISO time, UTC)")
    p.add_argument("--object", metavar="ID", help="only events about this object (doc-..., a storage key...)")
    p.add_argument("--action", action="append", metavar="ACTION",
                   help="only these actions: create, read, update, export, search, duplicate (repeatable)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N events (oldest first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import audit
    from frontdesk.db import open_database
    from frontdesk.records import since_date

    try:
        since = since_date(args.since) if args.since else None
    except ValueError as exc:
        print(f"frontdesk: --since: {exc}", file=sys.stderr)
        return ExitCode.general
    db = open_database(ctx.settings)
    with db.begin() as s:
        events = audit.events(s, patient_id=args.patient, since=since, object_id=args.object,
                              actions=args.action, limit=args.limit)
        rows: list[dict[str, Any]] = [
            {"at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "action": e.action,
             "object_type": e.object_type, "object_id": e.object_id, "patient_id": e.patient_id,
             "detail": e.detail} for e in events]
    if args.json:
        print(json.dumps(rows, indent=2))
        return ExitCode.ok
    print(f"{'time (UTC)':<25} {'actor':<12} {'action':<9} {'object':<9} {'id':<40} {'patient':<16} detail")
    for r in rows:
        print(f"{r['at']:<25} {r['actor'][:12]:<12} {r['action']:<9} {r['object_type']:<9} "
              f"{r['object_id'] or '-':<40} {r['patient_id'] or '-':<16} {r['detail'] or ''}")
    print(f"{len(rows)} events")
    return ExitCode.ok

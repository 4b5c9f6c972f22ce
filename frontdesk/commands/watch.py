"""``frontdesk watch [INBOX]``: take every file dropped into the inbox, exactly once."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode
from frontdesk.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("watch", help="watch the inbox folder and process every file dropped into it",
                       **examples(
        ("frontdesk watch inbox --once --dispatch local", "file what is in the inbox now, then exit (no Prefect)"),
        ("frontdesk watch --failed", "list the files set aside, with the name they had and the reason"),
        ("frontdesk watch inbox --polling --dispatch local", "(runs until stopped) watch a network share by polling")))
    add_watch_options(p)
    p.add_argument("--once", action="store_true",
                   help="take what is in the inbox now, wait until it is all filed, then exit")
    p.add_argument("--json", action="store_true", help="with --once or --failed: print JSON")
    p.add_argument("--failed", action="store_true",
                   help="list the files in the failed area with the names they had in the inbox, then exit")
    p.set_defaults(handler=run)


def add_watch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inbox", type=Path, nargs="?", metavar="INBOX", help="folder to watch (default: settings inbox)")
    p.add_argument("--polling", action="store_true", default=None,
                   help="poll instead of waiting for change events (SMB/NFS shares)")
    p.add_argument("--recursive", action="store_true", default=None, help="also take files from subfolders")
    p.add_argument("--stable", type=float, metavar="SECONDS",
                   help="a file is taken when its size and mtime held still this long")
    p.add_argument("--dispatch", choices=["inline", "deployment", "local"],
                   help="inline: intake flow here; deployment: one flow run per document on workers; "
                        "local: no Prefect")


def watch_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """Command-line options win over the settings file for this run only."""
    s = settings.model_copy(deep=True)
    if args.polling:
        s.watch.polling = True
    if args.recursive:
        s.watch.recursive = True
    if args.stable is not None:
        s.watch.stable_seconds = args.stable
    if args.dispatch == "local":
        s.watch.dispatch = "inline"
    elif args.dispatch:
        s.watch.dispatch = args.dispatch
    return s


def list_failed(settings: Settings, as_json: bool) -> int:
    """For staff at their terminal: which file each failed item was. The names are patient data, so they
    are printed here only, from the ledger, never written to logs or into the failed area."""
    from frontdesk.watch import WatchLedger

    if not settings.watch.ledger.exists():
        items = []
    else:
        ledger = WatchLedger(settings.watch.ledger)
        try:
            items = ledger.failed()
        finally:
            ledger.close()
    if as_json:
        print(json.dumps([{"id": i.id, "original_name": i.source, "reason": i.reason, "record_id": i.document_id,
                           "path": i.path, "when": i.when.isoformat(timespec="seconds")} for i in items], indent=2))
        return ExitCode.ok
    if not items:
        print("no failed files")
        return ExitCode.ok
    for i in items:
        print(f"{i.id}  {i.when:%Y-%m-%d %H:%M}  {i.source}  {i.reason or 'unknown'}")
    return ExitCode.ok


def run(args: argparse.Namespace, ctx: Any) -> int:
    from flows.dispatch import make_dispatcher
    from frontdesk.watch import Watcher

    settings = watch_settings(args, ctx.settings)
    if args.failed:
        return list_failed(settings, args.json)
    config = str(args.config) if args.config else None
    dispatcher = make_dispatcher(settings, config, "local") if args.dispatch == "local" else None
    watcher = Watcher(settings, args.inbox, config_file=config,
                      dispatcher=dispatcher or (lambda: make_dispatcher(settings, config)))
    from frontdesk.progress import shown

    try:
        if args.dispatch == "local":
            with shown(json_output=args.json):  # the documents read here: a first scan of a big inbox
                stats = watcher.run(once=args.once)
        else:  # flow runs, from several processes: they need one server to report to
            from flows.server import prefect_api

            with prefect_api(settings):
                stats = watcher.run(once=args.once)
    except KeyboardInterrupt:
        watcher.stop_event.set()
        return ExitCode.ok
    if args.once:
        if args.json:
            print(json.dumps({"claimed": stats.claimed, "finished": stats.finished}))
        else:
            done = ", ".join(f"{v} {k}" for k, v in sorted(stats.finished.items())) or "nothing"
            print(f"{stats.claimed} files taken; finished: {done}")
    return ExitCode.ok

"""``frontdesk process PATH...``: run the intake flow once over files and folders."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode
from frontdesk.models import ProcessOutcome


def register(sub: Any) -> None:
    p = sub.add_parser("process", help="extract, check, write letters for and file documents (one run)",
                       **examples(
        ("frontdesk process scans --json", "read, check, write letters for and file every document in a folder; a JSON list")))
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object per input, as a list")
    p.add_argument("--task-runner", choices=["thread", "dask"],
                   help="dask: spread the documents over a Dask cluster (prefect.dask_address, else a local one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from flows.intake import intake_flow_for, use_pipeline
    from frontdesk.pipeline import Pipeline

    config = str(args.config) if args.config else None
    settings = ctx.settings
    if args.task_runner:
        settings = settings.model_copy(deep=True)
        settings.prefect.task_runner = args.task_runner
    use_pipeline(Pipeline(settings), config)
    from frontdesk.progress import shown

    with shown(json_output=args.json):
        outcomes: list[ProcessOutcome] = intake_flow_for(settings)([str(p) for p in args.paths], config)
    if args.json:
        print(json.dumps([o.model_dump(mode="json") for o in outcomes], indent=2, ensure_ascii=False))
    else:
        print(render_summary(outcomes, ctx.settings.storage.root))
    return ExitCode.ok


def render_summary(outcomes: list[ProcessOutcome], storage_root: Path) -> str:
    lines = [f"{'input':<40} {'status':<13} {'record':<22} letters"]
    documents: list[ProcessOutcome] = []
    for o in outcomes:
        name = Path(o.input).name
        lines.append(f"{name[:40]:<40} {o.status:<13} {o.record_id or '-':<22} {len(o.letters)}")
        if o.error:
            lines.append(f"    {o.error}")
        rows = [o]
        if o.parts:  # a scanned stack: one line per form in it
            rows = o.parts
            for p in o.parts:
                where = f"  pages {','.join(map(str, p.source_pages or []))}"
                lines.append(f"{where[:40]:<40} {p.status:<13} {p.record_id or '-':<22} {len(p.letters)}")
                lines.extend(f"    [{f.severity}] {f.code}: {f.message}" for f in p.flags if f.severity == "error")
        else:
            lines.extend(f"    [{f.severity}] {f.code}: {f.message}" for f in o.flags if f.severity == "error")
        documents.extend(rows)
    counts = Counter(o.status for o in documents)
    letters = sum(len(o.letters) for o in documents)
    lines.append("")
    files = f"{len(outcomes)} file" + ("s" if len(outcomes) != 1 else "")
    lines.append(f"{len(documents)} documents from {files}: "
                 + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f"; {letters} letters")
    lines.append(f"Filed under {storage_root}")
    return "\n".join(lines)

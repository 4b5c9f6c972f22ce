"""``frontdesk extract FILE [--json]``: read one document and show its fields and flags. No Prefect."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode, InputFileError


def register(sub: Any) -> None:
    p = sub.add_parser("extract", help="read one document and print its fields and flags",
                       **examples(
        ("frontdesk extract scans/intake-0001.pdf", "the fields and flags of one document, as a table"),
        ("frontdesk extract scans/intake-0001.pdf --json", "the same as JSON (the documented shape, for scripts)")))
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print the documented JSON shape")
    p.add_argument("--forms-dir", type=Path, action="append", default=[], metavar="DIR",
                   help="also use the form templates in DIR (repeatable)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk.extraction import Reader

    reader = Reader(ctx.settings, args.forms_dir)
    try:
        results = reader.extract_all(args.file)
    except InputFileError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return ExitCode.bad_input
    except Exception as exc:  # a library bug on a hostile file must still be one line, not a traceback
        print(f"frontdesk: {args.file}: cannot be read ({exc.__class__.__name__})", file=sys.stderr)
        return ExitCode.bad_input
    if args.json:
        # The documented shape is the first document; a scanned stack adds every document it holds.
        out = results[0].model_dump(mode="json")
        if len(results) > 1:
            out["documents"] = [r.model_dump(mode="json") for r in results]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return ExitCode.ok
    vocab = reader.vocabulary
    for result in results:
        pages = f" [pages {', '.join(map(str, result.source_pages))}]" if len(results) > 1 and result.source_pages else ""
        print(f"{args.file}{pages}: {result.document_type}"
              + (f" ({result.form}, read from {result.method})" if result.form else ""))
        for key, fr in result.fields.items():
            value = "" if fr.value is None else ("yes" if fr.value is True else "no" if fr.value is False else fr.value)
            print(f"  {vocab.label(key):<40} {value}")
        if result.flags:
            print("Flags:")
            for f in result.flags:
                print(f"  [{f.severity}] {f.code}: {f.message}")
    return ExitCode.ok

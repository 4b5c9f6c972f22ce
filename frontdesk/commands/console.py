"""``frontdesk console [--host H] [--port P]``: serve the staff console (docs/console.md).

Listens on 127.0.0.1 unless told otherwise (``console.host`` or ``--host``); a practice server puts it
behind a reverse proxy with TLS. Uvicorn's access log is off: request lines are not patient data by
design (opaque ids only), but a log is the wrong place to prove that.
"""

from __future__ import annotations

import argparse
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("console", help="serve the staff console (web pages for the front desk)", **examples(
        ("frontdesk console --port 8181", "(runs until stopped) the staff console on http://127.0.0.1:8181")))
    p.add_argument("--host", help="address to listen on (default: console.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: console.port, 8180)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    import uvicorn

    from frontdesk.console import create_app

    settings = ctx.settings
    host = args.host or settings.console.host
    port = args.port or settings.console.port
    app = create_app(settings)
    print(f"Frontdesk console on http://{host}:{port}/ (Ctrl+C stops it)", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", proxy_headers=True,
                forwarded_allow_ips="127.0.0.1", server_header=False)
    return ExitCode.ok

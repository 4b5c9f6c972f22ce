"""``frontdesk serve [INBOX]``: the watcher and every deployment (intake, review, the scheduled flows)
in one long-running process, against the configured Prefect server or a local one it starts.

``frontdesk serve --register POOL`` instead creates the deployments on a process work pool and exits:
that is the scale-out set-up, where ``prefect worker start --pool POOL`` processes run the flows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from typing import Any

from flows.server import local_server_env as local_server_env  # its home before flows/server.py
from flows.server import prefect_api
from frontdesk.commands.help import examples
from frontdesk.commands.watch import add_watch_options, watch_settings
from frontdesk.exceptions import ConfigError, ExitCode

log = logging.getLogger("frontdesk.serve")


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the watcher and the scheduled flows (long-running)",
                       **examples(
        ("frontdesk serve inbox --polling", "(runs until stopped) the watcher plus the pre-visit check and mail batch on their schedules")))
    add_watch_options(p)
    p.add_argument("--no-watch", action="store_true", help="serve the deployments only")
    p.add_argument("--register", metavar="POOL",
                   help="create the deployments on process work pool POOL and exit (scale-out)")
    p.add_argument("--limit", type=int, help="flow runs at once in this process (default: the cores)")
    p.set_defaults(handler=run)


class ServeThread(threading.Thread):
    """Prefect's runner on its own event loop; the watcher keeps the main thread (its SIGTERM handler
    needs it)."""

    def __init__(self, deployments: list[Any], limit: int | None) -> None:
        super().__init__(name="frontdesk-serve", daemon=True)
        self.deployments = deployments
        self.limit = limit
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by the main thread
            self.error = exc

    async def _main(self) -> None:
        from prefect.runner import Runner

        self.loop = asyncio.get_running_loop()
        self.runner = Runner(name="frontdesk", pause_on_shutdown=False, limit=self.limit)
        for d in self.deployments:
            await self.runner.aadd_deployment(d)
        await self.runner.start()

    def stop(self) -> None:
        if self.loop is not None and self.runner is not None and self.loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self.runner.astop(), self.loop)
            try:
                fut.result(timeout=30)
            except Exception:  # the process is ending anyway
                log.debug("runner stop did not finish cleanly")
        self.join(timeout=30)


def run(args: argparse.Namespace, ctx: Any) -> int:
    settings = watch_settings(args, ctx.settings)
    config = str(args.config) if args.config else None
    from flows.deployments import config_for_served_runs

    with prefect_api(settings) as url, config_for_served_runs(config):
        from flows.deployments import build_deployments
        from flows.deployments import register as register_pool

        if args.register:
            ids = register_pool(settings, args.register, config)
            print(f"registered {len(ids)} deployments on work pool {args.register} at {url}")
            return ExitCode.ok
        deployments = build_deployments(settings)
        names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments)
        print(f"frontdesk: serving {names}", file=sys.stderr)
        server = ServeThread(deployments, args.limit or settings.prefect.limit or os.cpu_count() or 2)
        server.start()
        watcher = None
        try:
            if args.no_watch:
                while server.is_alive():
                    server.join(1)
            else:
                from flows.dispatch import make_dispatcher
                from frontdesk.watch import Watcher

                watcher = Watcher(settings, args.inbox, config_file=config,
                                  dispatcher=lambda: make_dispatcher(settings, config))
                watcher.run()
        except KeyboardInterrupt:
            pass
        finally:
            if watcher is not None:
                watcher.stop_event.set()
            server.stop()
        if server.error is not None and not isinstance(server.error, (KeyboardInterrupt, SystemExit)):
            raise ConfigError(f"serving the deployments failed ({server.error.__class__.__name__})")
    return ExitCode.ok

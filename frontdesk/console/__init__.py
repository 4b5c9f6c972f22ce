"""The staff console: the front desk's day in one web page (``frontdesk console``).

Server-rendered pages (FastAPI, Jinja2 in a sandboxed environment with autoescaping and StrictUndefined),
no JavaScript build step: one small static script adds keyboard shortcuts and nothing depends on it.
Every page and file with patient data needs a signed-in user; every view and change is audited with
that user's name. The console only calls the core (:mod:`frontdesk.review_queue`,
:mod:`frontdesk.actions`, :mod:`frontdesk.users`, :mod:`frontdesk.records`): nothing here that the CLI
cannot do as well.
"""

from frontdesk.console.app import create_app

__all__ = ["create_app"]

"""``frontdesk users add|list|disable|enable|password``: who may sign in to the staff console.

The password is read from the terminal without echo (twice), or from standard input when it is not a
terminal (one line, for scripts); never from the command line, where it would sit in shell history and
the process list.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from frontdesk.commands.help import examples
from frontdesk.exceptions import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("users", help="staff console users: add, list, disable, enable, password", **examples(
        ("frontdesk users add jsmith", "a staff user for the console; asks for the password"),
        ("frontdesk users list", "every user, with role and whether enabled"),
        ("frontdesk users password jsmith", "a new password (ends the user's sessions)"),
        ("frontdesk users disable jsmith", "no more logins; open sessions end"),
        ("frontdesk users enable jsmith", "let the user log in again")))
    psub = p.add_subparsers(dest="users_command", metavar="ACTION")
    psub.required = True
    a = psub.add_parser("add", help="add a user (password from the terminal, or one line on stdin)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--role", choices=("staff", "admin"), default="staff")
    a.set_defaults(handler=run_add)
    ls = psub.add_parser("list", help="list users")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)
    d = psub.add_parser("disable", help="disable a user and end their sessions")
    d.add_argument("name", metavar="NAME")
    d.set_defaults(handler=run_disable)
    e = psub.add_parser("enable", help="enable a disabled user")
    e.add_argument("name", metavar="NAME")
    e.set_defaults(handler=run_enable)
    pw = psub.add_parser("password", help="set a new password (ends the user's sessions)")
    pw.add_argument("name", metavar="NAME")
    pw.set_defaults(handler=run_password)


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit("frontdesk: the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run_add(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import users
    from frontdesk.db import open_database

    users.check_name(args.name)
    password = read_password()
    with open_database(ctx.settings).begin() as s:
        user = users.add_user(s, args.name, args.role, password)
        print(f"user {user.name} added ({user.role})")
    return ExitCode.ok


def run_list(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import users
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        rows = [{"name": u.name, "role": u.role, "active": u.active,
                 "last_login_at": u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else None}
                for u in users.list_users(s)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<24} {r['role']:<6} {'active' if r['active'] else 'disabled':<9} {r['last_login_at'] or '-'}")
        print(f"{len(rows)} users")
    return ExitCode.ok


def run_disable(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import users
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        users.disable_user(s, args.name)
    print(f"user {args.name} disabled")
    return ExitCode.ok


def run_enable(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import users
    from frontdesk.db import open_database

    with open_database(ctx.settings).begin() as s:
        users.enable_user(s, args.name)
    print(f"user {args.name} enabled")
    return ExitCode.ok


def run_password(args: argparse.Namespace, ctx: Any) -> int:
    from frontdesk import users
    from frontdesk.db import open_database

    password = read_password()
    with open_database(ctx.settings).begin() as s:
        users.set_password(s, args.name, password)
    print(f"password of {args.name} changed")
    return ExitCode.ok

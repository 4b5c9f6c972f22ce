"""The records database: engine, sessions and automatic migrations.

``open_database(settings)`` (or a URL) returns a :class:`Database` whose schema is at the newest Alembic
revision: commands that need records call it at start and never ask the IT person to run migrations.
SQLite (the default, a file under ``var/``) and PostgreSQL (any SQLAlchemy URL) are both supported.

Transactions are short and explicit (``with db.begin() as session:``). On SQLite every transaction
starts with ``BEGIN IMMEDIATE``: two processes sharing the file then queue for the write lock (up to the
busy timeout) instead of failing half-way when a reader tries to become a writer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.db.models import Base
from frontdesk.exceptions import ConfigError, FrontdeskError

log = logging.getLogger("frontdesk.db")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x46524F4E54  # any constant shared by all Frontdesk processes ("FRONT")


class DatabaseError(FrontdeskError):
    """The records database cannot be opened or migrated; nothing was processed."""

    exit_code = 7


def load_all_models() -> None:
    """Import every model module of this package (``models.py`` and the ``*_models.py`` other features
    add), so ``Base.metadata`` describes the whole schema: Alembic compares against it."""
    import importlib
    import pkgutil

    importlib.import_module("frontdesk.db.models")
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.endswith("_models"):
            importlib.import_module(f"frontdesk.db.{info.name}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's begin event below issues the BEGIN we want.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    _sqlite_wal(cur)
    cur.execute("PRAGMA synchronous=FULL")  # a committed record must survive a power cut: objects exist
    cur.close()


def _sqlite_wal(cur: Any, patience: float = 30.0) -> None:
    """Switch the file to WAL once; it is persistent, so later connections only read the mode.

    Changing the journal mode needs an exclusive lock and SQLite does not call the busy handler for it:
    two commands starting at the same moment on a new file would otherwise fail with "database is locked".
    """
    import sqlite3
    import time

    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and the pragmas above."""
    try:
        u = make_url(url)
    except Exception:
        raise ConfigError("database_url is not a valid SQLAlchemy URL") from None
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if u.get_backend_name() == "postgresql" and u.get_driver_name() in ("psycopg2", ""):
        # psycopg 3 is what the project installs; plain postgresql:// URLs mean it.
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, pool_pre_ping=True, hide_parameters=True)  # errors never print patient values


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision, holding a lock so concurrent starts migrate once."""
    from alembic import command

    if current_revision(engine) == head_revision():
        return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        # SQLite: BEGIN IMMEDIATE (see _sqlite_begin) already holds the write lock.
        command.upgrade(_alembic_config(conn), "head")
    log.info("records database migrated to %s", head_revision())


class Database:
    """An engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(source: Any, *, migrate_schema: bool = True) -> Database:
    """The records database named by ``source`` (Settings or a URL), migrated to the newest schema."""
    url = source if isinstance(source, str) else source.database_url
    engine = make_engine(url)
    try:
        if migrate_schema:
            migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        # The URL may hold a password and the driver message a host name; neither is patient data,
        # but the password must not reach a terminal or a log.
        raise DatabaseError(f"records database cannot be opened or migrated ({exc.__class__.__name__})") from None
    return Database(engine)


__all__ = ["Base", "Database", "DatabaseError", "load_all_models", "make_engine", "migrate", "open_database"]

"""Opening the application database: the engine, the schema brought up to date, a clear error when it cannot be.

Usage::

    db = Database.open(settings)       # creates <data_dir>/app.db (SQLite) or connects to RAG_DATABASE_URL
    with db.session() as s: ...        # one unit of work; committed on success, rolled back on error
    db.close()

The schema is migrated when the database is opened (Alembic, ``upgrade head``). Two API processes starting
together on one PostgreSQL take an advisory lock for it, so one migrates and the other finds it done. A
database whose schema is newer than this code (written by a later release) is refused, never downgraded or
overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.core.settings import DatabaseSettings

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x72616773  # "rags": the advisory lock two starting processes serialise their migrations on


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used now (the routes that need it answer 503 with this reason)."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer release of this code: refused, so nothing is overwritten."""


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def display_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: DatabaseSettings, *, migrate: bool = True) -> Database:
        url = settings.resolved_database_url
        engine = _engine(url, settings.database_timeout_s)
        db = cls(engine)
        if migrate:
            try:
                db.migrate()
            except BaseException:
                engine.dispose()
                raise
        return db

    def migrate(self) -> None:
        """Bring the schema to this code's head revision; refuse one newer than it."""
        script = ScriptDirectory.from_config(_alembic_config())
        try:
            with self.engine.begin() as conn:
                postgres = conn.dialect.name == "postgresql"
                if postgres:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                current = MigrationContext.configure(conn).get_current_revision()
                if current is not None and current not in {r.revision for r in script.walk_revisions()}:
                    raise SchemaTooNew(
                        f"the database {display_url(str(self.engine.url))} has schema revision {current!r}, newer "
                        f"than this release knows (head {script.get_current_head()!r}): upgrade the code, or point "
                        "RAG_DATABASE_URL at another database; nothing was changed"
                    )
                if current != script.get_current_head():
                    cfg = _alembic_config()
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    logger.info("database schema: %s -> %s", current, script.get_current_head())
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"database {display_url(str(self.engine.url))}: {_reason(exc)}") from exc

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work. Any database error leaves as ``DatabaseUnavailable`` (the routes' 503)."""
        try:
            with self._sessions.begin() as s:
                yield s
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"database: {_reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return (str(orig) if orig is not None else str(exc)).strip().splitlines()[0][:300]


def _engine(url: str, timeout_s: float) -> Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": timeout_s, "check_same_thread": False}
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": max(1, int(timeout_s))}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # the feedback of a deleted turn goes with it
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
            cur.close()

    return engine

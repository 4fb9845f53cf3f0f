"""Engines for the registry database, Alembic migrations and foreign-error mapping."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ironbridge.model import Conflict, IronbridgeError, PermanentError, TransientError

_LOGGER = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: execution option that asks for a write transaction (``BEGIN IMMEDIATE`` on SQLite)
WRITE = "ironbridge_write"


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (SQLite file or memory, or PostgreSQL).

    SQLite gets WAL, foreign keys, a busy timeout and explicit transactions: pysqlite's
    own implicit ``BEGIN`` only starts before DML, which would leave a method's reads
    outside its transaction. Write transactions use ``BEGIN IMMEDIATE`` so two writers
    queue on the busy timeout instead of failing on a lock upgrade.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30.0}}
    if parsed.database in (None, "", ":memory:"):
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config for the shipped migrations (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate_engine(engine: Engine, revision: str = "heads") -> None:
    """Run the registry migrations up to ``revision`` on ``engine``."""
    config = alembic_config()
    # A write transaction: two processes starting at once migrate one after the other
    # (SQLite); the second then finds the schema at head.
    with translate_errors(), engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    _LOGGER.info("registry schema migrated to %s", revision)


def migrate(url: str, revision: str = "heads") -> None:
    """Run the registry migrations on the database at ``url`` up to ``revision``."""
    engine = make_engine(url)
    try:
        migrate_engine(engine, revision)
    finally:
        engine.dispose()


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map SQLAlchemy and driver exceptions to the ironbridge error tree."""
    try:
        yield
    except IronbridgeError:
        raise
    except IntegrityError as exc:
        raise Conflict(f"conflicts with existing data: {exc.orig}") from exc
    except OperationalError as exc:
        raise TransientError(f"registry database unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise TransientError(f"registry connection lost: {exc.orig}") from exc
        raise PermanentError(f"registry database error: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise PermanentError(f"registry error: {exc}") from exc

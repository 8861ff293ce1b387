"""SQLAlchemy engines for the state database and the warehouse, with safe SQLite defaults."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

SQLITE_BUSY_TIMEOUT_MS = 30_000
WAL_SWITCH_ATTEMPTS = 20
WAL_SWITCH_PAUSE_S = 0.05


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets WAL and a busy timeout for concurrent runs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.close()

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch to WAL; retried because SQLite answers a concurrent switch with "locked" at once.

    Two runs opening a fresh database together both try the switch, which needs an exclusive
    lock and does not wait on the busy timeout. WAL persists in the file, so one success is enough.
    """
    for attempt in range(1, WAL_SWITCH_ATTEMPTS + 1):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == WAL_SWITCH_ATTEMPTS:
                raise
            time.sleep(WAL_SWITCH_PAUSE_S * attempt)


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs and metadata."""
    return make_url(url).render_as_string(hide_password=True)


CREATE_ATTEMPTS = 5


def create_tables(metadata: MetaData, engine: Engine) -> None:
    """`metadata.create_all`, safe when several processes create the same tables at once.

    PostgreSQL answers the loser of a concurrent `CREATE TABLE` with a unique violation on its
    catalog (pg_type) instead of waiting; SQLite with "table already exists". Once the winner has
    committed, the tables exist and another `create_all` (checkfirst) is a no-op.
    """
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            metadata.create_all(engine)
            return
        except DBAPIError:
            if attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)


def add_missing_columns(engine: Engine, table: Table) -> list[str]:
    """Add the nullable columns `table` has in code but not yet in the database; returns them.

    For state tables that gained columns: a database written by an earlier version keeps its
    rows, which read NULL in the new columns. Safe when several processes upgrade at once: a
    column another process added between our look and our change is accepted.
    """
    present = {column["name"] for column in inspect(engine).get_columns(table.name)}
    added = []
    for column in table.columns:
        if column.name in present:
            continue
        if not column.nullable:
            raise ValueError(f"{table.name}.{column.name}: only nullable columns can be added")
        type_sql = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as db:
                db.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {type_sql}'))
            added.append(column.name)
        except (OperationalError, ProgrammingError):
            now = {c["name"] for c in inspect(engine).get_columns(table.name)}
            if column.name not in now:
                raise
    return added

"""SQLAlchemy engines for the state database and the warehouse, with safe SQLite defaults."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from resources.redaction import redact_secrets

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
# Every table of the state database, whichever room defines it (the connection registry, leases,
# the sync log, the audit trail, the CRM push state): one schema for the one database. Each store
# creates only its own tables (`create_tables(STATE_METADATA, engine, [its tables])`).
STATE_METADATA = MetaData()


def create_tables(
    metadata: MetaData, engine: Engine, tables: Sequence[Table] | None = None
) -> None:
    """`metadata.create_all` (of `tables`, or all), safe when several processes create the same
    tables at once.

    PostgreSQL answers the loser of a concurrent `CREATE TABLE` with a unique violation on its
    catalog (pg_type) instead of waiting; SQLite with "table already exists". Once the winner has
    committed, the tables exist and another `create_all` (checkfirst) is a no-op.
    """
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            metadata.create_all(engine, tables=tables)
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


SERVER_CONNECT_TIMEOUT_S = 5  # a preflight that waits longer than this reads as a hang
# What to do with a damaged SQLite file, per variable: what is lost differs.
DAMAGED_ADVICE = {
    "STATE_DATABASE_URL": "restore it from a backup, or move it aside and connect every "
    "connection again (`tiktok-crm-sync connections connect NAME`): it holds their tokens",
    "WAREHOUSE_URL": "restore it from a backup, or move it aside: the next sync writes a new one "
    "(history before today is lost)",
}


def sqlite_file_problem(variable: str, url: str) -> str | None:
    """One line when the SQLite file `url` names exists but is not a sound SQLite database."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    path = Path(database).expanduser().resolve()
    if not path.is_file() or path.stat().st_size == 0:
        return None  # SQLite creates it (an empty file is a new database)
    advice = DAMAGED_ADVICE.get(variable, "restore it from a backup, or move it aside")
    # Only through SQLite, never a plain open() of the file: closing any other descriptor of a
    # database file drops every POSIX lock this process holds on it, so a check in a process
    # whose other threads are writing (the daemon's code server runs schedule and sensors in
    # threads) lets other processes write over them and corrupts the file (SQLite's "How To
    # Corrupt An SQLite Database File", 2.2). Seen: state.db "file is not a database" mid-sync.
    # The state database is small: check every page. A warehouse may be gigabytes: its schema
    # pages only, which is what every statement reads first.
    check = "PRAGMA quick_check(1)" if variable == "STATE_DATABASE_URL" else None
    try:
        with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            verdict = db.execute(check).fetchone()[0] if check else "ok"
    except sqlite3.DatabaseError as err:
        if "file is not a database" in str(err):
            return f"{path} ({variable}) is not a SQLite database: {advice}"
        verdict = str(err)
    if verdict != "ok":
        verdict = " ".join(str(verdict).split())[:80]  # SQLite lists problems on several lines
        return f"{path} ({variable}) is damaged ({verdict}): {advice}"
    return None


def server_problem(variable: str, url: str) -> str | None:
    """One line when the database server `url` names cannot be reached or refuses us."""
    parsed = make_url(url)
    connect_args = {"connect_timeout": SERVER_CONNECT_TIMEOUT_S}
    if parsed.get_backend_name() != "postgresql":
        connect_args = {}
    engine = create_engine(parsed, connect_args=connect_args, poolclass=NullPool)
    try:
        with engine.connect():
            return None
    except DBAPIError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        reason = redact_secrets(reason, [parsed.password or ""])[:160]
        return (
            f"{variable}={redact_url(url)}: cannot connect ({reason}); check its host, port, user "
            "and password"
        )
    finally:
        engine.dispose()


def database_problem(variable: str, url: str) -> str | None:
    """The one line that says why the database `url` cannot be used, or None when it can."""
    if make_url(url).get_backend_name() == "sqlite":
        return sqlite_file_problem(variable, url)
    return server_problem(variable, url)

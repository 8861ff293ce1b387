"""The `tiktok_connections` table of the state database: schema, migration, tokens at rest.

Token columns hold Fernet ciphertext (`resources.connections.crypto`); they stay NOT NULL, as in
databases created by earlier versions, and a disconnected connection holds `NO_TOKEN` (empty) there.
`tokens_encrypted` is NULL on rows an earlier version wrote in clear; they are encrypted the first
time a store has the key.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

from resources.connections.crypto import TokenCipher
from resources.database import STATE_METADATA, create_tables

NO_TOKEN = ""

connections_table = Table(
    "tiktok_connections",
    STATE_METADATA,
    Column("name", String(63), primary_key=True),
    Column("app", String(32), nullable=False),
    Column("open_id", String(128), nullable=False),
    Column("display_name", Text),
    Column("scopes", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text),
    Column("access_token", Text, nullable=False),
    Column("refresh_token", Text, nullable=False),
    Column("access_expires_at", Float, nullable=False),
    Column("refresh_expires_at", Float, nullable=False),
    Column("token_version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_synced_at", Float),
    # NULL on rows written before encryption (clear text): encrypted on first use of the key.
    Column("tokens_encrypted", Integer),
)


def create_or_migrate(engine: Engine) -> None:
    """Create the table, or add the columns earlier versions lacked (idempotent)."""
    create_tables(STATE_METADATA, engine, [connections_table])
    present = {column["name"] for column in inspect(engine).get_columns(connections_table.name)}
    if "tokens_encrypted" in present:
        return
    try:
        with engine.begin() as db:
            db.execute(text("ALTER TABLE tiktok_connections ADD COLUMN tokens_encrypted INTEGER"))
    except (OperationalError, ProgrammingError):
        # Another process added it between our look and our change; anything else is re-raised.
        present = {c["name"] for c in inspect(engine).get_columns(connections_table.name)}
        if "tokens_encrypted" not in present:
            raise


def encrypt_clear_rows(engine: Engine, cipher: TokenCipher) -> int:
    """Encrypt the tokens that an earlier version stored in clear; returns the rows changed."""
    table = connections_table
    with engine.begin() as db:
        rows = db.execute(
            select(table.c.name, table.c.access_token, table.c.refresh_token).where(
                table.c.tokens_encrypted.is_(None)
            )
        ).all()
        for name, access, refresh in rows:
            db.execute(
                update(table)
                .where(table.c.name == name, table.c.tokens_encrypted.is_(None))
                .values(
                    access_token=cipher.encrypt(access) if access else NO_TOKEN,
                    refresh_token=cipher.encrypt(refresh) if refresh else NO_TOKEN,
                    tokens_encrypted=1,
                )
            )
    if rows and engine.dialect.name == "sqlite":
        # SQLite keeps overwritten pages on disk until a VACUUM: drop the clear text there too.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.execute(text("VACUUM"))
            db.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return len(rows)


def reencrypt_rows(engine: Engine, cipher: TokenCipher) -> int:
    """Every stored token re-encrypted with the first key, in one transaction; returns rows."""
    table = connections_table
    rotated = 0
    with engine.begin() as db:
        rows = db.execute(select(table.c.name, table.c.access_token, table.c.refresh_token)).all()
        for name, access, refresh in rows:
            if not access and not refresh:
                continue  # disconnected: nothing to re-encrypt
            db.execute(
                update(table)
                .where(table.c.name == name)
                .values(
                    access_token=cipher.rotate(access, name) if access else NO_TOKEN,
                    refresh_token=cipher.rotate(refresh, name) if refresh else NO_TOKEN,
                )
            )
            rotated += 1
    return rotated

"""The connections registry: one row per authorized TikTok account, in the state database.

A connection's `name` is its Dagster partition key, so it is validated once here and never changes.
Tokens are written only through `save_grant` / `replace_tokens`, which store the rotated refresh
token in the same transaction as the access token that came with it. Tokens are Fernet-encrypted at
rest (`resources.connections.crypto`) and decrypted only when `Connection.access_token` or
`.refresh_token` is read, so listing connections (the sensor, the schedule, `connections list`)
needs no key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import (
    Engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection as DbConnection

from resources.connections import table as connection_table
from resources.connections.crypto import TokenCipher, cipher_from_environment
from resources.connections.table import NO_TOKEN, connections_table
from resources.tiktok.oauth import TokenGrant
from resources.tiktok.scopes import parse_scopes

ACTIVE = "active"
NEEDS_RECONNECT = "needs_reconnect"
DISCONNECTED = "disconnected"
STATUSES = (ACTIVE, NEEDS_RECONNECT, DISCONNECTED)
# Also a valid Dagster partition key: no commas, brackets, slashes or whitespace.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class UnknownConnection(LookupError):
    pass


class NoTokens(ValueError):
    """The connection was disconnected: its tokens were deleted."""


def validate_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid connection name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (it becomes the Dagster partition key)"
        )
    return name


@dataclass(frozen=True)
class _SealedTokens:
    """A row's token columns; opened only on demand, through the store's cipher."""

    connection: str
    access: str
    refresh: str
    encrypted: bool
    cipher: Callable[[], TokenCipher]

    def open(self, sealed: str) -> str:
        if not sealed:
            raise NoTokens(
                f"connection {self.connection!r} is disconnected and holds no tokens; run "
                f"`tiktok-crm-sync connections reconnect {self.connection}` to authorize it again"
            )
        cipher = self.cipher()  # resolving it also encrypts rows left in clear by old versions
        return cipher.decrypt(sealed, self.connection) if self.encrypted else sealed


@dataclass(frozen=True)
class Connection:
    name: str
    app: str
    open_id: str
    display_name: str | None
    scopes: frozenset[str]
    status: str
    status_reason: str | None
    access_expires_at: float
    refresh_expires_at: float
    token_version: int
    last_synced_at: float | None
    _tokens: _SealedTokens = field(repr=False, compare=False)

    @property
    def access_token(self) -> str:
        return self._tokens.open(self._tokens.access)

    @property
    def refresh_token(self) -> str:
        return self._tokens.open(self._tokens.refresh)

    @property
    def has_tokens(self) -> bool:
        return bool(self._tokens.access or self._tokens.refresh)


class ConnectionStore:
    def __init__(
        self,
        engine: Engine,
        now: Callable[[], float] = time.time,
        cipher: TokenCipher | None = None,
    ) -> None:
        self.engine = engine
        self._now = now
        self._cipher_value = cipher
        connection_table.create_or_migrate(engine)

    def cipher(self) -> TokenCipher:
        """The token cipher (from the environment unless injected); raises TokenKeyError."""
        if self._cipher_value is None:
            self._cipher_value = cipher_from_environment()
        return self._cipher_value

    def encrypt_clear_tokens(self) -> int:
        """Encrypt the tokens an earlier version stored in clear (`connections encrypt-tokens`);
        returns the rows changed. Until then such rows are read as they are."""
        return connection_table.encrypt_clear_rows(self.engine, self.cipher())

    def get(self, name: str) -> Connection:
        with self.engine.connect() as db:
            row = db.execute(
                select(connections_table).where(connections_table.c.name == name)
            ).first()
        if row is None:
            raise UnknownConnection(
                f"no connection named {name!r}; `tiktok-crm-sync connections list` shows the "
                "registered ones"
            )
        return self._to_connection(row._mapping)

    def find(self, app: str, open_id: str) -> Connection | None:
        """The connection of one TikTok account through one app, if registered."""
        query = select(connections_table).where(
            connections_table.c.app == app, connections_table.c.open_id == open_id
        )
        with self.engine.connect() as db:
            row = db.execute(query.order_by(connections_table.c.name)).first()
        return None if row is None else self._to_connection(row._mapping)

    def list(self, status: str | None = None) -> list[Connection]:
        query = select(connections_table).order_by(connections_table.c.name)
        if status:
            query = query.where(connections_table.c.status == status)
        with self.engine.connect() as db:
            return [self._to_connection(row._mapping) for row in db.execute(query)]

    def names(self, status: str | None = ACTIVE) -> list[str]:
        return [connection.name for connection in self.list(status)]

    def save_grant(
        self, name: str, app: str, grant: TokenGrant, display_name: str | None = None
    ) -> Connection:
        """Register a connection, or re-authorize an existing one in place (same name, history)."""
        self.save_grants([(name, app, grant, display_name)])
        return self.get(name)

    def save_grants(self, grants: Sequence[tuple[str, str, TokenGrant, str | None]]) -> None:
        """Several `save_grant`s in one transaction: all are stored, or none (imports)."""
        for name, *_ in grants:
            validate_name(name)
        cipher = self.cipher()
        with self.engine.begin() as db:
            for name, app, grant, display_name in grants:
                self._write_grant(db, cipher, name, app, grant, display_name)

    def _write_grant(
        self,
        db: DbConnection,
        cipher: TokenCipher,
        name: str,
        app: str,
        grant: TokenGrant,
        display_name: str | None,
    ) -> None:
        now = self._now()
        values: dict[str, object] = {
            "app": app,
            "open_id": grant.open_id,
            "scopes": ",".join(sorted(grant.scopes)),
            "status": ACTIVE,
            "status_reason": None,
            **self._sealed(cipher, grant),
            "updated_at": now,
        }
        if display_name is not None:
            values["display_name"] = display_name
        found = db.execute(
            select(connections_table.c.token_version).where(connections_table.c.name == name)
        ).first()
        if found is None:
            db.execute(
                insert(connections_table).values(
                    name=name, created_at=now, token_version=1, **values
                )
            )
        else:
            db.execute(
                update(connections_table)
                .where(connections_table.c.name == name)
                .values(token_version=found.token_version + 1, **values)
            )

    def replace_tokens(self, name: str, grant: TokenGrant, expected_version: int) -> bool:
        """Store a refreshed grant unless someone did since `expected_version` (compare-and-set)."""
        sealed = self._sealed(self.cipher(), grant)
        with self.engine.begin() as db:
            result = db.execute(
                update(connections_table)
                .where(connections_table.c.name == name)
                .where(connections_table.c.token_version == expected_version)
                .values(
                    **sealed,
                    scopes=",".join(sorted(grant.scopes)) or connections_table.c.scopes,
                    token_version=expected_version + 1,
                    updated_at=self._now(),
                )
            )
        return result.rowcount == 1

    def forget_tokens(self, name: str, reason: str, status: str = DISCONNECTED) -> bool:
        """Delete the tokens and set `status`; True if there were tokens to delete."""
        self.get(name)  # a clear error for an unknown name
        with self.engine.begin() as db:
            had = db.execute(
                select(connections_table.c.access_token).where(
                    connections_table.c.name == name, connections_table.c.access_token != NO_TOKEN
                )
            ).first()
            db.execute(
                update(connections_table)
                .where(connections_table.c.name == name)
                .values(
                    access_token=NO_TOKEN,
                    refresh_token=NO_TOKEN,
                    access_expires_at=0.0,
                    refresh_expires_at=0.0,
                    tokens_encrypted=1,
                    token_version=connections_table.c.token_version + 1,
                    status=status,
                    status_reason=reason,
                    updated_at=self._now(),
                )
            )
        return had is not None

    def rotate_key(self) -> int:
        """Re-encrypt every stored token with the first key, in one transaction; returns rows."""
        return connection_table.reencrypt_rows(self.engine, self.cipher())

    def set_status(self, name: str, status: str, reason: str | None = None) -> None:
        with self.engine.begin() as db:
            db.execute(
                update(connections_table)
                .where(connections_table.c.name == name)
                .values(status=status, status_reason=reason, updated_at=self._now())
            )

    def mark_synced(self, name: str, display_name: str | None = None) -> None:
        values: dict[str, object] = {"last_synced_at": self._now()}
        if display_name:
            values["display_name"] = display_name
        with self.engine.begin() as db:
            db.execute(
                update(connections_table).where(connections_table.c.name == name).values(**values)
            )

    def __iter__(self) -> Iterator[Connection]:
        return iter(self.list())

    def _sealed(self, cipher: TokenCipher, grant: TokenGrant) -> dict[str, object]:
        return {
            "access_token": cipher.encrypt(grant.access_token),
            "refresh_token": cipher.encrypt(grant.refresh_token),
            "access_expires_at": grant.access_expires_at,
            "refresh_expires_at": grant.refresh_expires_at,
            "tokens_encrypted": 1,
        }

    def _to_connection(self, row: dict) -> Connection:
        return Connection(
            name=row["name"],
            app=row["app"],
            open_id=row["open_id"],
            display_name=row["display_name"],
            scopes=parse_scopes(row["scopes"]),
            status=row["status"],
            status_reason=row["status_reason"],
            access_expires_at=row["access_expires_at"],
            refresh_expires_at=row["refresh_expires_at"],
            token_version=row["token_version"],
            last_synced_at=row["last_synced_at"],
            _tokens=_SealedTokens(
                connection=row["name"],
                access=row["access_token"],
                refresh=row["refresh_token"],
                encrypted=bool(row["tokens_encrypted"]),
                cipher=self.cipher,
            ),
        )


def connection_metadata(connection: Connection, now: float | None = None) -> dict[str, object]:
    """What a materialization shows about its connection: status and expiry, never a token."""
    now = time.time() if now is None else now
    facts: dict[str, object] = {
        "connection": connection.name,
        "connection_status": connection.status,
        "tiktok_app": connection.app,
        "granted_scopes": ", ".join(sorted(connection.scopes)),
    }
    if connection.status_reason:
        facts["connection_status_reason"] = connection.status_reason
    if connection.has_tokens:
        facts["refresh_token_expires_at"] = _iso(connection.refresh_expires_at)
        facts["refresh_token_days_left"] = round((connection.refresh_expires_at - now) / 86_400, 1)
    return facts


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")

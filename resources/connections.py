"""The connections registry: one row per authorized TikTok account, in the state database.

A connection's `name` is its Dagster partition key, so it is validated once here and never changes.
Tokens are written only through `save_grant` / `replace_tokens`, which store the rotated refresh
token in the same transaction as the access token that came with it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from resources.tiktok.oauth import TokenGrant
from resources.tiktok.scopes import parse_scopes

ACTIVE = "active"
NEEDS_RECONNECT = "needs_reconnect"
DISCONNECTED = "disconnected"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

metadata = MetaData()
connections_table = Table(
    "tiktok_connections",
    metadata,
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
)


class UnknownConnection(LookupError):
    pass


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"invalid connection name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (it becomes the Dagster partition key)"
        )
    return name


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
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


class ConnectionStore:
    def __init__(self, engine: Engine, now: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._now = now
        metadata.create_all(engine)

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
        return _to_connection(row._mapping)

    def list(self, status: str | None = None) -> list[Connection]:
        query = select(connections_table).order_by(connections_table.c.name)
        if status:
            query = query.where(connections_table.c.status == status)
        with self.engine.connect() as db:
            return [_to_connection(row._mapping) for row in db.execute(query)]

    def names(self, status: str | None = ACTIVE) -> list[str]:
        return [connection.name for connection in self.list(status)]

    def save_grant(
        self, name: str, app: str, grant: TokenGrant, display_name: str | None = None
    ) -> Connection:
        """Register a connection, or re-authorize an existing one in place (same name, history)."""
        validate_name(name)
        now = self._now()
        values = {
            "app": app,
            "open_id": grant.open_id,
            "scopes": ",".join(sorted(grant.scopes)),
            "status": ACTIVE,
            "status_reason": None,
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
            "access_expires_at": grant.access_expires_at,
            "refresh_expires_at": grant.refresh_expires_at,
            "updated_at": now,
        }
        if display_name is not None:
            values["display_name"] = display_name
        with self.engine.begin() as db:
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
        return self.get(name)

    def replace_tokens(self, name: str, grant: TokenGrant, expected_version: int) -> bool:
        """Store a refreshed grant unless someone did since `expected_version` (compare-and-set)."""
        with self.engine.begin() as db:
            result = db.execute(
                update(connections_table)
                .where(connections_table.c.name == name)
                .where(connections_table.c.token_version == expected_version)
                .values(
                    access_token=grant.access_token,
                    refresh_token=grant.refresh_token,
                    access_expires_at=grant.access_expires_at,
                    refresh_expires_at=grant.refresh_expires_at,
                    scopes=",".join(sorted(grant.scopes)) or connections_table.c.scopes,
                    token_version=expected_version + 1,
                    updated_at=self._now(),
                )
            )
        return result.rowcount == 1

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


def _to_connection(row: dict) -> Connection:
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
        access_token=row["access_token"],
        refresh_token=row["refresh_token"],
    )

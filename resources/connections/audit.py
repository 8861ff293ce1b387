"""The audit trail of the connection lifecycle, in the state database (never the warehouse).

One row per event: connected, reconnected, imported, disconnected, deauthorized by TikTok, and one
row per warehouse table a purge emptied, with the rows removed. Rows are only ever inserted, and
never hold a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Engine, Float, Integer, String, Table, Text, insert, select

from resources.database import STATE_METADATA, create_tables

CONNECTED = "connected"
RECONNECTED = "reconnected"
IMPORTED = "imported"
DISCONNECTED = "disconnected"
DEAUTHORIZED = "deauthorized"
PURGED = "purged"
KEY_ROTATED = "key_rotated"

audit_table = Table(
    "tiktok_connection_audit",
    STATE_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connection_name", String(63), nullable=False, index=True),
    Column("event", String(32), nullable=False),
    Column("detail", Text),
    Column("warehouse_table", String(63)),
    Column("rows_removed", Integer),
    Column("command", String(64), nullable=False),
    Column("at", Float, nullable=False),
)


@dataclass(frozen=True)
class AuditEvent:
    connection_name: str
    event: str
    detail: str | None
    warehouse_table: str | None
    rows_removed: int | None
    command: str
    at: float


class AuditLog:
    def __init__(self, engine: Engine, now: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._now = now
        create_tables(STATE_METADATA, engine, [audit_table])

    def record(
        self,
        connection_name: str,
        event: str,
        command: str,
        detail: str | None = None,
        removed: dict[str, int] | None = None,
    ) -> None:
        """One event row, plus one row per warehouse table in `removed` (table -> rows)."""
        at = self._now()
        base = {"connection_name": connection_name, "command": command, "at": at}
        rows = [
            base | {"event": event, "detail": detail, "warehouse_table": None, "rows_removed": None}
        ]
        rows += [
            base
            | {"event": PURGED, "detail": None, "warehouse_table": table, "rows_removed": count}
            for table, count in sorted((removed or {}).items())
        ]
        with self.engine.begin() as db:
            db.execute(insert(audit_table), rows)

    def events(self, connection_name: str | None = None) -> list[AuditEvent]:
        query = select(audit_table).order_by(audit_table.c.id)
        if connection_name:
            query = query.where(audit_table.c.connection_name == connection_name)
        with self.engine.connect() as db:
            return [
                AuditEvent(
                    connection_name=row.connection_name,
                    event=row.event,
                    detail=row.detail,
                    warehouse_table=row.warehouse_table,
                    rows_removed=row.rows_removed,
                    command=row.command,
                    at=row.at,
                )
                for row in db.execute(query)
            ]

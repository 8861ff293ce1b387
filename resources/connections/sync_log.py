"""Which day each connection last had a full sync, for the incremental policy's periodic full."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Column, Date, Engine, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from resources.database import STATE_METADATA, create_tables

full_syncs = Table(
    "connection_full_syncs",
    STATE_METADATA,
    Column("connection_name", String(63), primary_key=True),
    Column("synced_on", Date, nullable=False),
)


class SyncLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(STATE_METADATA, engine, [full_syncs])

    def last_full(self, name: str) -> date | None:
        query = select(func.max(full_syncs.c.synced_on)).where(full_syncs.c.connection_name == name)
        with self.engine.connect() as db:
            return db.execute(query).scalar_one_or_none()

    def record_full(self, name: str, day: date) -> None:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(full_syncs).values(connection_name=name, synced_on=day)
        statement = statement.on_conflict_do_update(
            index_elements=[full_syncs.c.connection_name], set_={"synced_on": day}
        )
        with self.engine.begin() as db:
            db.execute(statement)

"""The push state's two tables and the row helpers they share (see `state`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql, sqlite

from resources.database import STATE_METADATA

KEY_CHUNK = 500  # keys per IN (...) query, well under SQLite's bound-parameter limit

push_state = Table(
    "crm_push_state",
    STATE_METADATA,
    Column("mapping", String(63), primary_key=True),
    Column("record_key", Text, primary_key=True),
    Column("target_kind", String(20), nullable=False),
    Column("target_object", Text, nullable=False),
    Column("connection_name", String(63), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("crm_id", Text),
    Column("pushed_at", DateTime(timezone=True), nullable=False),
)
rejections = Table(
    "crm_rejections",
    STATE_METADATA,
    Column("mapping", String(63), primary_key=True),
    Column("record_key", Text, primary_key=True),
    Column("target_kind", String(20), nullable=False),
    Column("target_object", Text, nullable=False),
    Column("connection_name", String(63), nullable=False),
    Column("error_class", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("record", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_rejected_at", DateTime(timezone=True), nullable=False),
    Column("last_rejected_at", DateTime(timezone=True), nullable=False),
)


def chunks(keys: Iterable[str]) -> Iterator[list[str]]:
    iterator = iter(keys)
    while chunk := list(islice(iterator, KEY_CHUNK)):
        yield chunk


def as_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)


def upsert(
    db: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    changing: list[str],
    increment: str | None = None,
) -> None:
    insert_fn = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    statement = insert_fn(table)
    updates: dict[str, Any] = {name: statement.excluded[name] for name in changing}
    if increment:
        updates[increment] = table.c[increment] + 1
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[c.name for c in table.primary_key.columns], set_=updates
        ),
        rows,
    )

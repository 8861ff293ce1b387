"""Idempotent writes into the warehouse (any SQLAlchemy URL; SQLite and PostgreSQL are tested).

Tables are created on first use and migrated by adding missing pipeline columns; columns that users
add (notes, tags) are never altered, and an upsert sets only the pipeline's own columns, so a
sync never overwrites them. Every row carries `_synced_at` and `_load_id`. Upserts go in chunks
inside the caller's transaction: one transaction per partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

CHUNK_ROWS = 1_000
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SQL_TYPES: dict[str, type[TypeEngine]] = {
    "string": Text,
    "integer": BigInteger,
    "float": Float,
    "boolean": Boolean,
    "datetime": DateTime,
    "date": Date,
    "json": JSON,
}
LOAD_COLUMNS = (("_synced_at", "datetime"), ("_load_id", "string"))


class WarehouseError(RuntimeError):
    pass


def check_identifier(name: str, what: str = "table") -> str:
    if not _IDENTIFIER.match(name):
        raise WarehouseError(
            f"invalid {what} name {name!r}: use lowercase letters, digits and _ (max 63), "
            "starting with a letter or _"
        )
    return name


def _sql_type(kind: str) -> TypeEngine:
    if kind == "datetime":
        return DateTime(timezone=True)
    try:
        return SQL_TYPES[kind]()
    except KeyError:
        raise WarehouseError(f"unknown column type {kind!r}") from None


class Warehouse:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tables: dict[str, Table] = {}

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as db:
            yield db

    def ensure_table(
        self, name: str, columns: Sequence[tuple[str, str]], key: Sequence[str]
    ) -> Table:
        """Create the table, or add the pipeline columns it lacks; user columns are left alone."""
        check_identifier(name)
        wanted = [(check_identifier(col, "column"), kind) for col, kind in columns]
        wanted += [col for col in LOAD_COLUMNS if col[0] not in dict(wanted)]
        missing_key = set(key) - {col for col, _ in wanted}
        if missing_key:
            raise WarehouseError(f"table {name}: key columns {sorted(missing_key)} are not columns")
        with self.engine.begin() as db:
            existing = inspect(db)
            if not existing.has_table(name):
                table = Table(
                    name,
                    MetaData(),
                    *(
                        Column(col, _sql_type(kind), nullable=col not in key)
                        for col, kind in wanted
                    ),
                    PrimaryKeyConstraint(*key, name=f"pk_{name}"),
                )
                table.create(db)
            else:
                present = {col["name"] for col in existing.get_columns(name)}
                for col, kind in wanted:
                    if col not in present:
                        type_sql = _sql_type(kind).compile(dialect=db.dialect)
                        db.execute(text(f'ALTER TABLE "{name}" ADD COLUMN "{col}" {type_sql}'))
        table = Table(name, MetaData(), autoload_with=self.engine)
        self._tables[name] = table
        return table

    def upsert(
        self,
        db: Connection,
        table: Table,
        rows: Iterable[dict[str, Any]],
        key: Sequence[str],
        load_id: str,
        owned: Sequence[str] | None = None,
    ) -> int:
        """Insert or update `rows` on `key`; only `owned` columns (default: the rows' keys) move."""
        synced_at = datetime.now(UTC)
        insert_fn = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
        written = 0
        iterator = iter(rows)
        while chunk := list(islice(iterator, CHUNK_ROWS)):
            values = [row | {"_synced_at": synced_at, "_load_id": load_id} for row in chunk]
            columns = owned or list(values[0])
            statement = insert_fn(table)
            updates = {
                col: statement.excluded[col]
                for col in [*columns, "_synced_at", "_load_id"]
                if col not in key
            }
            db.execute(
                statement.on_conflict_do_update(index_elements=list(key), set_=updates), values
            )
            written += len(values)
        return written

    def count(self, name: str, **where: Any) -> int:
        table = self._table(name)
        query = select(func.count()).select_from(table)
        for col, value in where.items():
            query = query.where(table.c[col] == value)
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())

    def rows(self, name: str, **where: Any) -> list[dict[str, Any]]:
        table = self._table(name)
        query = select(table)
        for col, value in where.items():
            query = query.where(table.c[col] == value)
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query)]

    def _table(self, name: str) -> Table:
        if name not in self._tables:
            self._tables[name] = Table(name, MetaData(), autoload_with=self.engine)
        return self._tables[name]

    def has_table(self, name: str) -> bool:
        return inspect(self.engine).has_table(name)

"""Idempotent writes into the warehouse (any SQLAlchemy URL; SQLite and PostgreSQL are tested).

Tables are created on first use and migrated only by adding missing pipeline columns: a column whose
declared type changed is refused with the fix, never altered, and columns users add (notes, tags)
are never touched, because an upsert sets only the pipeline's own columns. Every row carries
`_synced_at` and `_load_id`. An upsert runs in the caller's transaction (one per partition) and
refuses rows that lack a key or repeat one, since either would make a rerun write different rows.

How rows reach a table (COPY on PostgreSQL, executemany upserts elsewhere): `warehouse_load`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
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
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from resources.warehouse.load import (
    LOAD_COLUMNS,
    LOAD_NAMES,
    Batch,
    PostgresCopy,
    WarehouseError,
    db_message,
    executemany_upsert,
)
from resources.warehouse.statements import (
    RANK,
    bound_values,
    filter_of,
    select_count,
    select_latest,
    select_rows,
)

# A concurrent CREATE TABLE / ADD COLUMN of the same table makes one attempt lose; the next one
# sees the other process's work and goes on.
ENSURE_ATTEMPTS = 5
# \Z, not $: `$` also matches before a trailing newline, which would let "videos\n" through.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
# PostgreSQL's catalogs (and pg_temp, pg_toast), and SQLite's per-connection temporary database.
_SYSTEM_SCHEMAS = frozenset({"information_schema", "temp"})
SQL_TYPES: dict[str, type[TypeEngine]] = {
    "string": Text,
    "integer": BigInteger,
    "float": Float,
    "boolean": Boolean,
    "datetime": DateTime,
    "date": Date,
    "json": JSON,
}
# Reflected type -> the pipeline type it holds; order matters (Boolean before Integer, Float is
# Numeric). A reflected type outside these (SQLite's NullType) is not checked.
_FAMILIES: tuple[tuple[type[TypeEngine], str], ...] = (
    (Boolean, "boolean"),
    (Integer, "integer"),
    (Numeric, "float"),
    (DateTime, "datetime"),
    (Date, "date"),
    (JSON, "json"),
    (String, "string"),
)


def check_identifier(name: str, what: str = "table") -> str:
    if not _IDENTIFIER.match(name):
        raise WarehouseError(
            f"invalid {what} name {name!r}: use lowercase letters, digits and _ (max 63), "
            "starting with a letter or _"
        )
    return name


def split_table_name(name: str) -> tuple[str | None, str]:
    """(schema or None, table) of `table` or `schema.table`, both parts validated."""
    schema, dot, table = name.rpartition(".")
    # ".videos" names no schema: refused, not read as "videos".
    if dot and (schema.startswith("pg_") or schema in _SYSTEM_SCHEMAS):
        raise WarehouseError(
            f"invalid schema name {schema!r}: it is the database's own (system catalogs, or "
            "temporary tables that vanish with their connection); use a schema of your own"
        )
    if table.startswith("sqlite_"):
        raise WarehouseError(f"invalid table name {table!r}: SQLite reserves names sqlite_*")
    return (check_identifier(schema, "schema") if dot else None), check_identifier(table)


def _sql_type(kind: str) -> TypeEngine:
    if kind == "datetime":
        return DateTime(timezone=True)
    if kind not in SQL_TYPES:
        raise WarehouseError(f"unknown column type {kind!r}; use one of {', '.join(SQL_TYPES)}")
    return SQL_TYPES[kind]()


def _family(sql_type: TypeEngine) -> str | None:
    return next((kind for cls, kind in _FAMILIES if isinstance(sql_type, cls)), None)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Warehouse:
    def __init__(self, engine: Engine, now: Callable[[], datetime] = _utc_now) -> None:
        self.engine = engine
        self._now = now
        self._tables: dict[str, Table] = {}

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as db:
            yield db

    def ensure_table(
        self, name: str, columns: Sequence[tuple[str, str]], key: Sequence[str]
    ) -> Table:
        """Create the table, or add the pipeline columns it lacks; user columns are left alone.

        Safe from several processes at once: losing a CREATE/ALTER race is retried.
        """
        schema, table_name = split_table_name(name)
        wanted = _wanted_columns(name, columns, key)
        for attempt in range(1, ENSURE_ATTEMPTS + 1):
            try:
                with self.engine.begin() as db:
                    _lock_table_ddl(db, name)
                    _create_or_migrate(db, name, wanted, key)
                break
            except DBAPIError as err:
                if attempt < ENSURE_ATTEMPTS and _lost_ddl_race(err):
                    continue
                raise WarehouseError(
                    f"could not create or migrate table {name}: {db_message(err)}"
                ) from err
        table = Table(table_name, MetaData(), schema=schema, autoload_with=self.engine)
        self._tables[name] = table
        return table

    def upsert_method(self, db: Connection) -> str:
        """How `upsert` writes on this connection: "copy" (psycopg 3) or "executemany"."""
        if db.dialect.name != "postgresql" or db.dialect.driver != "psycopg":
            return "executemany"
        # COPY stages and savepoints need a transaction; AUTOCOMMIT connections have none.
        return "executemany" if db.connection.driver_connection.autocommit else "copy"

    def upsert(
        self,
        db: Connection,
        table: Table,
        rows: Iterable[dict[str, Any]],
        key: Sequence[str],
        load_id: str,
        owned: Sequence[str] | None = None,
    ) -> int:
        """Insert or update `rows` on `key`; only `owned` columns (default: the rows' keys) move.

        Rows are streamed in chunks and must all have the first row's columns. Returns the number
        of rows written. On an error, roll the transaction back: part of the rows may be written.
        """
        iterator = iter(rows)
        first = next(iterator, None)
        if first is None:
            return 0
        batch = Batch(table, first, chain([first], iterator), key, (self._now(), load_id))
        update = [
            c for c in dict.fromkeys([*(owned or batch.columns), *LOAD_NAMES]) if c not in key
        ]
        batch.check_columns(update)
        if self.upsert_method(db) == "copy" and PostgresCopy(db, batch, update).run():
            return batch.position
        return executemany_upsert(db, batch, update)

    def count(self, name: str, **where: Any) -> int:
        table = self._table(name)
        query = select_count(table, filter_of(where))
        with self.engine.connect() as db:
            return int(db.execute(query, bound_values(where)).scalar_one())

    def rows(self, name: str, **where: Any) -> list[dict[str, Any]]:
        query = select_rows(self._table(name), filter_of(where))
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query, bound_values(where))]

    def latest_rows(
        self, name: str, per: str, order_by: str, *, skip: int = 0, **where: Any
    ) -> list[dict[str, Any]]:
        """Per `per` value, the row with the greatest `order_by`, or the one `skip` rows before it.

        E.g. per="video_id", order_by="snapshot_date", skip=1: each video's previous snapshot.
        """
        query = select_latest(self._table(name), per, order_by, filter_of(where))
        values = {**bound_values(where), RANK: skip + 1}
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query, values)]

    def _table(self, name: str) -> Table:
        if name not in self._tables:
            schema, table_name = split_table_name(name)
            self._tables[name] = Table(
                table_name, MetaData(), schema=schema, autoload_with=self.engine
            )
        return self._tables[name]

    def has_table(self, name: str) -> bool:
        # A table this warehouse object ensured or read stays (the pipeline never drops one): a
        # run's connections ask for the same few tables thousands of times.
        if name in self._tables:
            return True
        schema, table_name = split_table_name(name)
        return inspect(self.engine).has_table(table_name, schema=schema)


def _wanted_columns(
    name: str, columns: Sequence[tuple[str, str]], key: Sequence[str]
) -> list[tuple[str, str]]:
    wanted = [(check_identifier(col, "column"), kind) for col, kind in columns]
    for _col, kind in wanted:
        _sql_type(kind)  # an unknown type fails here, before any DDL
    names = [col for col, _kind in wanted]
    repeated = sorted({col for col in names if names.count(col) > 1})
    if repeated:
        raise WarehouseError(f"table {name}: columns {repeated} are declared more than once")
    if not key or set(key) - set(names):
        raise WarehouseError(
            f"table {name}: the key ({', '.join(key) or 'none'}) must be one or more of its columns"
        )
    return wanted + [col for col in LOAD_COLUMNS if col[0] not in names]


def _lock_table_ddl(db: Connection, name: str) -> None:
    # PostgreSQL: processes creating or migrating the same table take turns (released at commit).
    if db.dialect.name == "postgresql":
        digest = hashlib.blake2b(f"tiktok_crm_sync.ensure_table:{name}".encode(), digest_size=8)
        lock_id = int.from_bytes(digest.digest(), "big", signed=True)
        db.execute(text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": lock_id})


def _create_or_migrate(
    db: Connection, name: str, wanted: list[tuple[str, str]], key: Sequence[str]
) -> None:
    schema, table_name = split_table_name(name)
    table = Table(
        table_name,
        MetaData(),
        *(Column(col, _sql_type(kind), nullable=col not in key) for col, kind in wanted),
        PrimaryKeyConstraint(*key, name=f"pk_{table_name}"),
        schema=schema,
    )
    existing = inspect(db)
    if not existing.has_table(table_name, schema=schema):
        table.create(db)
        return
    present = {col["name"]: col["type"] for col in existing.get_columns(table_name, schema=schema)}
    # Check everything before adding anything, so a refused migration changes nothing.
    _check_types(db, name, wanted, present)
    _check_key(existing, name, key)
    for col, kind in wanted:
        if col not in present:
            type_sql = _sql_type(kind).compile(dialect=db.dialect)
            target = db.dialect.identifier_preparer.format_table(table)
            db.execute(text(f'ALTER TABLE {target} ADD COLUMN "{col}" {type_sql}'))


def _check_types(
    db: Connection, name: str, wanted: list[tuple[str, str]], present: dict[str, TypeEngine]
) -> None:
    changed = [
        (col, kind, present[col])
        for col, kind in wanted
        if col in present and _family(present[col]) not in (None, kind)
    ]
    if not changed:
        return
    col, kind, found = changed[0]
    new_sql = _sql_type(kind).compile(dialect=db.dialect)
    listing = "; ".join(f"{c} is {t.compile(dialect=db.dialect)}, now {k}" for c, k, t in changed)
    raise WarehouseError(
        f"table {name}: the pipeline's column types changed ({listing}). The loader never "
        "changes a column's type, since that can fail or lose data. Either keep the old type "
        f"(e.g. `type: {_family(found)}` for {col} in the mapping file), or migrate the column "
        f'yourself: on PostgreSQL `ALTER TABLE {name} ALTER COLUMN "{col}" TYPE {new_sql} '
        f'USING "{col}"::{new_sql}`; on SQLite rename it (`ALTER TABLE {name} RENAME COLUMN '
        f'"{col}" TO "{col}_old"`) and the next sync adds it with the new type'
    )


def _check_key(existing: Any, name: str, key: Sequence[str]) -> None:
    schema, table_name = split_table_name(name)
    primary = existing.get_pk_constraint(table_name, schema=schema)["constrained_columns"]
    indexes = existing.get_indexes(table_name, schema=schema)
    constraints = existing.get_unique_constraints(table_name, schema=schema)
    unique = [set(primary), *(set(i["column_names"]) for i in indexes if i.get("unique"))]
    if set(key) not in unique + [set(c["column_names"]) for c in constraints]:
        raise WarehouseError(
            f"table {name} has primary key ({', '.join(primary) or 'none'}) but the pipeline "
            f"upserts on ({', '.join(key)}); the loader never changes a table's key. Rename the "
            f"old table (`ALTER TABLE {name} RENAME TO {table_name}_old`) so the next sync "
            "creates it with the new key, or write to another table (the mapping's target.object)"
        )


def _lost_ddl_race(err: DBAPIError) -> bool:
    # 42P07 duplicate table, 42701 duplicate column, 23505 pg_type row of a table created meanwhile.
    if getattr(err.orig, "sqlstate", None) in ("42P07", "42701", "23505"):
        return True
    message = str(err.orig).lower()
    return "already exists" in message or "duplicate column" in message

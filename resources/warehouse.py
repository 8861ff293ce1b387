"""Idempotent writes into the warehouse (any SQLAlchemy URL; SQLite and PostgreSQL are tested).

Tables are created on first use and migrated only by adding missing pipeline columns: a column whose
declared type changed is refused with the fix, never altered, and columns users add (notes, tags)
are never touched, because an upsert sets only the pipeline's own columns. Every row carries
`_synced_at` and `_load_id`. An upsert runs in the caller's transaction (one per partition) and
refuses rows that lack a key or repeat one, since either would make a rerun write different rows.

On PostgreSQL through psycopg 3, rows go in chunks of COPY_CHUNK_ROWS: one indexed query finds
which keys exist, new rows are COPYed (binary) straight into the table and existing ones into a
temporary staging table that updates them. Most loads of this pipeline are all-new rows (the daily
snapshot tables, new videos), so they cost about what a bare COPY costs. Elsewhere (SQLite, other
drivers) rows go through executemany upserts in chunks of CHUNK_ROWS.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from itertools import chain, islice
from operator import itemgetter
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
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.types import TypeEngine

CHUNK_ROWS = 1_000
# Rows encoded and sent per COPY: bounds memory (about 12 MB of wide video rows) and the key lookup.
COPY_CHUNK_ROWS = 10_000
# PostgreSQL caches 64 subtransactions per transaction, then slows every session's snapshots down;
# an optimistic COPY uses one, so leave room for the caller's own.
MAX_COPY_SAVEPOINTS = 32
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
LOAD_COLUMNS = (("_synced_at", "datetime"), ("_load_id", "string"))
_LOAD_NAMES = tuple(name for name, _kind in LOAD_COLUMNS)
_SAVEPOINT = "tiktok_crm_sync_copy"
_SAVEPOINTS_USED = "tiktok_crm_sync.copy_savepoints"  # key in Connection.info
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
# PostgreSQL types that psycopg writes in binary COPY, and the Python values each takes.
_COPY_VALUES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("text", "varchar", "bpchar"), (str,)),
    **dict.fromkeys(("int2", "int4", "int8"), (int,)),
    **dict.fromkeys(("float4", "float8"), (int, float)),
    "bool": (bool, int),
    "date": (date,),
    "timestamp": (datetime,),
    "timestamptz": (datetime,),
    "json": (object,),
    "jsonb": (object,),
}


class WarehouseError(RuntimeError):
    """A table or rows the warehouse cannot take as asked; the message says what to do."""


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
                    f"could not create or migrate table {name}: {_db_message(err)}"
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
        batch = _Batch(table, first, chain([first], iterator), key, (self._now(), load_id))
        update = [
            c for c in dict.fromkeys([*(owned or batch.columns), *_LOAD_NAMES]) if c not in key
        ]
        batch.check_columns(update)
        if self.upsert_method(db) == "copy" and _PostgresCopy(db, batch, update).run():
            return batch.position
        return _executemany_upsert(db, batch, update)

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

    def latest_rows(
        self, name: str, per: str, order_by: str, *, skip: int = 0, **where: Any
    ) -> list[dict[str, Any]]:
        """Per `per` value, the row with the greatest `order_by`, or the one `skip` rows before it.

        E.g. per="video_id", order_by="snapshot_date", skip=1: each video's previous snapshot.
        """
        table = self._table(name)
        rank = func.row_number().over(partition_by=table.c[per], order_by=table.c[order_by].desc())
        ranked = select(table, rank.label("_row_rank"))
        for col, value in where.items():
            ranked = ranked.where(table.c[col] == value)
        inner = ranked.subquery()
        query = select(*(inner.c[col.name] for col in table.columns)).where(
            inner.c["_row_rank"] == skip + 1
        )
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query)]

    def _table(self, name: str) -> Table:
        if name not in self._tables:
            schema, table_name = split_table_name(name)
            self._tables[name] = Table(
                table_name, MetaData(), schema=schema, autoload_with=self.engine
            )
        return self._tables[name]

    def has_table(self, name: str) -> bool:
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


def _db_message(err: Exception) -> str:
    # The driver's own first line, without SQLAlchemy's echo of the statement and its parameters.
    orig = getattr(err, "orig", None) or err
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."


class _Batch:
    """The rows of one upsert call, as tuples in `names` order, with their keys checked."""

    def __init__(
        self,
        table: Table,
        first: dict[str, Any],
        rows: Iterator[dict[str, Any]],
        key: Sequence[str],
        extra: tuple[datetime, str],
    ) -> None:
        self.table, self.name, self.rows, self.key = table, table.fullname, rows, key
        self.columns = [c for c in first if c not in _LOAD_NAMES]
        self.names = [*self.columns, *_LOAD_NAMES]
        self.extra = extra  # our load columns win over any the rows carry
        self.width = len(first)
        self.position = 0  # rows handed out so far, for messages
        missing = [k for k in key if k not in self.columns]
        if missing:
            raise WarehouseError(
                f"table {self.name}: the rows have no key column {', '.join(missing)}: every row "
                "needs its key"
            )

    def check_columns(self, update: Sequence[str]) -> None:
        unknown = [c for c in dict.fromkeys([*self.columns, *update]) if c not in self.table.c]
        if unknown:
            raise WarehouseError(
                f"table {self.name} has no column {', '.join(unknown)}: declare it in the "
                "columns given to ensure_table (for a mapping: a field of the mapping file)"
            )

    def chunks(
        self, size: int, fixes: dict[int, Callable[[Any], Any]] | None = None
    ) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """(value tuples, their keys), up to `size` rows; stops at a row lacking or repeating a key.

        The keys seen are kept for the whole call (key values only), so a repeat is found anywhere.
        """
        tuples = self._tuples(fixes or {})
        key_of = itemgetter(*(self.names.index(k) for k in self.key))
        single_key, seen = len(self.key) == 1, set()
        while chunk := list(islice(tuples, size)):
            keys = (
                [(key_of(values),) for values in chunk] if single_key else list(map(key_of, chunk))
            )
            for offset, row_key in enumerate(keys):
                if None in row_key or row_key in seen:
                    number = self.position - len(chunk) + offset + 1
                    raise WarehouseError(self._key_problem(number, row_key, row_key in seen))
                seen.add(row_key)
            yield chunk, keys

    def _tuples(self, fixes: dict[int, Callable[[Any], Any]]) -> Iterator[tuple]:
        extra, get = self.extra, itemgetter(*self.columns)
        single, fix_at = len(self.columns) == 1, list(fixes.items())
        for row in self.rows:
            try:
                values = (get(row),) if single else get(row)
            except (KeyError, TypeError):
                raise WarehouseError(self._shape_problem(row)) from None
            if len(row) != self.width:
                raise WarehouseError(self._shape_problem(row))
            for i, fix in fix_at:
                if values[i] is not None and (fixed := fix(values[i])) is not values[i]:
                    values = (*values[:i], fixed, *values[i + 1 :])
            self.position += 1
            yield values + extra

    def _shape_problem(self, row: object) -> str:
        where = f"table {self.name}: row {self.position + 1}"
        if not isinstance(row, dict):
            return f"{where} is {type(row).__name__}, not a dict of column values"
        missing = [c for c in self.columns if c not in row]
        extra = [str(c) for c in row if c not in self.columns]
        return (
            f"{where} has other columns than the first row (missing: {', '.join(missing) or '-'}"
            f"; extra: {', '.join(extra) or '-'}): give every row of a load the same columns "
            "(None for an empty value)"
        )

    def _key_problem(self, number: int, values: tuple[Any, ...], duplicate: bool) -> str:
        pairs = list(zip(self.key, values, strict=True))
        if duplicate:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in pairs)
            return (
                f"table {self.name}: row {number} repeats the key ({shown}) of an earlier row; "
                "an upsert needs one row per key: drop or merge the duplicates before loading"
            )
        empty = ", ".join(k for k, v in pairs if v is None)
        return f"table {self.name}: row {number} has no value for key column {empty}"

    def value_problem(self, number: int, types: Sequence[str], values: Sequence[Any]) -> str:
        for column, type_name, value in zip(self.names, types, values, strict=True):
            if value is not None and not isinstance(value, _COPY_VALUES[type_name]):
                return (
                    f"table {self.name}: row {number}, column {column} ({type_name}) cannot hold "
                    f"{type(value).__name__} {_short(value)}: load typed values (a mapping "
                    "field's `type:` casts them) or change the column's type"
                )
        return f"table {self.name}: row {number} has a value PostgreSQL cannot take"


def _executemany_upsert(db: Connection, batch: _Batch, update: Sequence[str]) -> int:
    inserts = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if db.dialect.name not in inserts:
        raise WarehouseError(
            f"the warehouse dialect {db.dialect.name!r} is not supported: use PostgreSQL or SQLite"
        )
    statement = inserts[db.dialect.name](batch.table)
    statement = statement.on_conflict_do_update(
        index_elements=list(batch.key), set_={col: statement.excluded[col] for col in update}
    )
    for chunk, _keys in batch.chunks(CHUNK_ROWS):
        try:
            db.execute(statement, [dict(zip(batch.names, row, strict=True)) for row in chunk])
        except (StatementError, DBAPIError, OverflowError, UnicodeError) as err:
            # sqlite3 raises OverflowError (an int beyond int64) and UnicodeEncodeError (a lone
            # surrogate) itself, before the database sees the row.
            first = batch.position - len(chunk) + 1
            message = _db_message(err) if isinstance(err, StatementError | DBAPIError) else err
            raise WarehouseError(
                f"table {batch.name}: the database refused a row among rows {first}-"
                f"{batch.position}: {message}"
            ) from err
    return batch.position


def _datetime_fix(aware: bool) -> Callable[[Any], Any]:
    """Binary COPY takes aware datetimes for timestamptz, naive for timestamp; naive means UTC."""

    def fix(value: Any) -> Any:
        if isinstance(value, datetime):
            if aware:
                return value if value.tzinfo else value.replace(tzinfo=UTC)
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        if isinstance(value, date):
            return datetime.combine(value, time(), UTC if aware else None)
        return value

    return fix


class _PostgresCopy:
    """The psycopg 3 path: per chunk, COPY new keys into the table, stage and UPDATE the others."""

    def __init__(self, db: Connection, batch: _Batch, update: Sequence[str]) -> None:
        self.db, self.batch, self.update = db, batch, update
        self.raw = db.connection.driver_connection
        prep = db.dialect.identifier_preparer
        self.target, self.quote = prep.format_table(batch.table), prep.quote
        self.stage: str | None = None
        self.types: list[str] = []
        self.oids: list[int] = []

    def cols(self, names: Iterable[str], alias: str = "") -> str:
        return ", ".join(f"{alias}{self.quote(name)}" for name in names)

    def run(self) -> bool:
        """Load every row; False (nothing done) when a column type has no binary COPY."""
        import psycopg

        with self.raw.cursor() as cur:
            cur.execute(f"SELECT {self.cols(self.batch.names)} FROM {self.target} LIMIT 0")
            self.oids = [column.type_code for column in cur.description or ()]
            self.types = [getattr(psycopg.postgres.types.get(o), "name", "") for o in self.oids]
            if not set(self.types) <= set(_COPY_VALUES):
                return False
            fixes = {
                i: _datetime_fix(aware=name == "timestamptz")
                for i, name in enumerate(self.types[: len(self.batch.columns)])
                if name in ("timestamp", "timestamptz")
            }
            try:
                for chunk, keys in self.batch.chunks(COPY_CHUNK_ROWS, fixes):
                    self._load(cur, chunk, keys)
            except psycopg.errors.UniqueViolation as err:
                raise WarehouseError(
                    f"table {self.batch.name}: another transaction inserted some of these keys "
                    "while this load ran (two runs of one partition at once?); rerun the partition"
                ) from err
            except psycopg.errors.NotNullViolation as err:
                raise WarehouseError(
                    f"table {self.batch.name}: column {err.diag.column_name} cannot be empty"
                ) from err
            except psycopg.DataError as err:
                # The context names the column; its line counts within one COPY of a chunk.
                column = re.search(r"column (\w+)", err.diag.context or "")
                raise WarehouseError(
                    f"table {self.batch.name}: PostgreSQL refused a value of column "
                    f"{column.group(1) if column else '?'} among rows up to {self.batch.position}: "
                    f"{err.diag.message_primary}; fix the value at its source"
                ) from err
            if self.stage:
                cur.execute(f"DROP TABLE {self.stage}")  # one transaction may load many batches
        return True

    def _load(self, cur: Any, chunk: list[tuple], keys: list[tuple]) -> None:
        import psycopg

        first = self.batch.position - len(chunk) + 1
        # Chunks are mostly all new (daily snapshots, new videos) or all known (refreshes): the
        # first and last keys tell which, and a wrong "all new" costs one failed COPY.
        ends = [keys[0], keys[-1]]
        if not self._existing_keys(cur, ends) and self._take_savepoint():
            cur.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                self._copy(cur, self.target, chunk, range(first, first + len(chunk)))
                cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                return
            except psycopg.errors.UniqueViolation:
                cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        # Rows checked absent go in by plain COPY, only the rows that exist are staged.
        existing = self._existing_keys(cur, keys)
        old = [i for i, row_key in enumerate(keys) if row_key in existing]
        new = [i for i, row_key in enumerate(keys) if row_key not in existing]
        if old:
            self._update(cur, [chunk[i] for i in old], [first + i for i in old])
        if new:
            self._copy(cur, self.target, [chunk[i] for i in new], [first + i for i in new])

    def _take_savepoint(self) -> bool:
        """Whether this transaction may open one more COPY savepoint (MAX_COPY_SAVEPOINTS)."""
        transaction = self.db.get_transaction()
        owner, used = self.db.info.get(_SAVEPOINTS_USED, (None, 0))
        used = used if owner is transaction else 0
        if used >= MAX_COPY_SAVEPOINTS:
            return False
        self.db.info[_SAVEPOINTS_USED] = (transaction, used + 1)
        return True

    def _existing_keys(self, cur: Any, keys: list[tuple]) -> set[tuple[Any, ...]]:
        key, columns = self.batch.key, [list(column) for column in zip(*keys, strict=True)]
        types = [self.types[self.batch.names.index(k)] for k in key]
        # %b: binary arrays; the text format escapes every string through a regex (4x slower).
        arrays = ", ".join(f"%b::{type_name}[]" for type_name in types)
        match = " AND ".join(f"t.{self.quote(k)} = k.c{i}" for i, k in enumerate(key))
        aliases = ", ".join(f"c{i}" for i in range(len(key)))
        found = cur.execute(
            f"SELECT {self.cols(key, 't.')} FROM {self.target} AS t "
            f"JOIN unnest({arrays}) AS k({aliases}) ON {match}",
            columns,
        )
        return {tuple(row) for row in found}

    def _update(self, cur: Any, rows: list[tuple], numbers: Sequence[int]) -> None:
        if self.stage is None:
            self.stage = self.quote(f"_stage_{uuid.uuid4().hex[:16]}")
            staged = dict.fromkeys([*self.batch.names, *self.update])
            cur.execute(
                f"CREATE TEMP TABLE {self.stage} ON COMMIT DROP AS "
                f"SELECT {self.cols(staged)} FROM {self.target} WITH NO DATA"
            )
        else:
            cur.execute(f"TRUNCATE {self.stage}")
        self._copy(cur, self.stage, rows, numbers)
        match = " AND ".join(f"t.{self.quote(k)} = s.{self.quote(k)}" for k in self.batch.key)
        sets = ", ".join(f"{self.quote(c)} = s.{self.quote(c)}" for c in self.update)
        updated = cur.execute(
            f"UPDATE {self.target} AS t SET {sets} FROM {self.stage} AS s WHERE {match}"
        ).rowcount
        if updated < len(rows):  # deleted by another transaction since we looked: insert again
            names = self.cols(self.batch.names)
            cur.execute(
                f"INSERT INTO {self.target} ({names}) SELECT {names} FROM {self.stage} AS s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {self.target} AS t WHERE {match})"
            )

    def _copy(self, cur: Any, table: str, rows: list[tuple], numbers: Sequence[int]) -> None:
        """Stream the rows in binary COPY, so PostgreSQL ingests while Python encodes."""
        names = self.cols(self.batch.names)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(self.oids)
            for number, values in zip(numbers, rows, strict=True):
                try:
                    copy.write_row(values)
                except (TypeError, ValueError, OverflowError) as err:
                    # The COPY is abandoned with this error, so its half-written row never lands.
                    problem = self.batch.value_problem(number, self.types, values)
                    raise WarehouseError(problem) from err

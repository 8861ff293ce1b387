"""How rows reach a warehouse table: one upsert call's rows as a checked batch, then either
PostgreSQL's COPY path or executemany upserts. `resources.warehouse.store` decides and owns the
tables.

On PostgreSQL through psycopg 3, rows go in chunks of COPY_CHUNK_ROWS: one indexed query finds
which keys exist, new rows are COPYed (binary) straight into the table and existing ones into a
temporary staging table that updates them. Most loads of this pipeline are all-new rows (the daily
snapshot tables, new videos), so they cost about what a bare COPY costs. Elsewhere (SQLite, other
drivers) rows go through executemany upserts in chunks of CHUNK_ROWS.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError, StatementError

from resources.warehouse.statements import INSERTS, upsert_statement

CHUNK_ROWS = 1_000
# Rows encoded and sent per COPY: bounds memory (about 12 MB of wide video rows) and the key lookup.
COPY_CHUNK_ROWS = 10_000
# PostgreSQL caches 64 subtransactions per transaction, then slows every session's snapshots down;
# an optimistic COPY uses one, so leave room for the caller's own.
MAX_COPY_SAVEPOINTS = 32
LOAD_COLUMNS = (("_synced_at", "datetime"), ("_load_id", "string"))
LOAD_NAMES = tuple(name for name, _kind in LOAD_COLUMNS)
_SAVEPOINT = "tiktok_crm_sync_copy"
_SAVEPOINTS_USED = "tiktok_crm_sync.copy_savepoints"  # key in Connection.info
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


def db_message(err: Exception) -> str:
    # The driver's own first line, without SQLAlchemy's echo of the statement and its parameters.
    orig = getattr(err, "orig", None) or err
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."


class Batch:
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
        self.columns = [c for c in first if c not in LOAD_NAMES]
        self.names = [*self.columns, *LOAD_NAMES]
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


def executemany_upsert(db: Connection, batch: Batch, update: Sequence[str]) -> int:
    if db.dialect.name not in INSERTS:
        raise WarehouseError(
            f"the warehouse dialect {db.dialect.name!r} is not supported: use PostgreSQL or SQLite"
        )
    statement = upsert_statement(db.dialect.name, batch.table, tuple(batch.key), tuple(update))
    for chunk, _keys in batch.chunks(CHUNK_ROWS):
        try:
            db.execute(statement, [dict(zip(batch.names, row, strict=True)) for row in chunk])
        except (StatementError, DBAPIError, OverflowError, UnicodeError) as err:
            # sqlite3 raises OverflowError (an int beyond int64) and UnicodeEncodeError (a lone
            # surrogate) itself, before the database sees the row.
            first = batch.position - len(chunk) + 1
            message = db_message(err) if isinstance(err, StatementError | DBAPIError) else err
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


class PostgresCopy:
    """The psycopg 3 path: per chunk, COPY new keys into the table, stage and UPDATE the others."""

    def __init__(self, db: Connection, batch: Batch, update: Sequence[str]) -> None:
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

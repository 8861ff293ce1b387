"""The statements the warehouse runs for every connection, built once per table and filter.

A sync upserts and reads each connection's rows with the same few statements. Built anew each
time, SQLAlchemy rebuilt the statement and its cache key before finding the compiled form (4% of
a sync's CPU for the upsert's ON CONFLICT clause alone); built once, with the values bound at
execution, it finds the compiled form at once. Tables are keyed by identity: a table reflected
again is a new key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Select, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@lru_cache(maxsize=256)
def upsert_statement(
    dialect: str, table: Table, key: tuple[str, ...], update: tuple[str, ...]
) -> Insert:
    """The same statement object for every load of a table: SQLAlchemy then finds its compiled
    form at once (building it and its cache key anew was 4% of a sync's CPU)."""
    statement = INSERTS[dialect](table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={col: statement.excluded[col] for col in update}
    )


RANK = "_row_rank"
Filter = tuple[tuple[str, bool], ...]  # (column, value is None) per column a read filters on


@lru_cache(maxsize=256)
def select_count(table: Table, where: Filter) -> Select:
    return select(func.count()).select_from(table).where(*_equal(table, where))


@lru_cache(maxsize=256)
def select_rows(table: Table, where: Filter) -> Select:
    return select(table).where(*_equal(table, where))


@lru_cache(maxsize=256)
def select_latest(table: Table, per: str, order_by: str, where: Filter) -> Select:
    rank = func.row_number().over(partition_by=table.c[per], order_by=table.c[order_by].desc())
    inner = select(table, rank.label(RANK)).where(*_equal(table, where)).subquery()
    return select(*(inner.c[col.name] for col in table.columns)).where(
        inner.c[RANK] == bindparam(RANK)
    )


def _equal(table: Table, columns: Filter) -> list:
    """`column = :column` for each (column, False); `column IS NULL` for each (column, True)."""
    return [table.c[col] == (None if null else bindparam(col)) for col, null in columns]


def filter_of(where: dict[str, Any]) -> Filter:
    return tuple((col, value is None) for col, value in where.items())


def bound_values(where: dict[str, Any]) -> dict[str, Any]:
    return {col: value for col, value in where.items() if value is not None}

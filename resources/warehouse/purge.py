"""Remove one connection's rows from the warehouse: every table with a `connection_name` column.

The tables are reflected rather than listed, so mapping targets added later and user-made tables
that carry `connection_name` are purged too. All deletes run in one warehouse transaction: either
every table loses the connection's rows or none does.
"""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, Table, delete, inspect

CONNECTION_COLUMN = "connection_name"


def tables_with_connection_column(engine: Engine) -> list[str]:
    inspector = inspect(engine)
    return sorted(
        name
        for name in inspector.get_table_names()
        if any(column["name"] == CONNECTION_COLUMN for column in inspector.get_columns(name))
    )


def purge_connection(engine: Engine, connection_name: str) -> dict[str, int]:
    """Delete the connection's rows from every such table in one transaction; table -> rows."""
    removed: dict[str, int] = {}
    names = tables_with_connection_column(engine)
    with engine.begin() as db:
        for name in names:
            table = Table(name, MetaData(), autoload_with=db)
            result = db.execute(delete(table).where(table.c[CONNECTION_COLUMN] == connection_name))
            removed[name] = int(result.rowcount)
    return removed

"""Purge: warehouse tables with a `connection_name` column -> that connection's rows deleted ->
audit rows in the state database. On SQLite and PostgreSQL.
"""

import pytest

from resources.connections.audit import AuditLog
from resources.database import make_engine
from resources.warehouse.purge import purge_connection, tables_with_connection_column
from resources.warehouse.store import Warehouse

VIDEO_COLUMNS = [("connection_name", "string"), ("id", "string"), ("views", "integer")]


def fill(warehouse: Warehouse) -> None:
    videos = warehouse.ensure_table("tiktok_videos", VIDEO_COLUMNS, ("connection_name", "id"))
    custom = warehouse.ensure_table(
        "my_notes", [("connection_name", "string")], ("connection_name",)
    )
    other = warehouse.ensure_table("fx_rates", [("currency", "string")], ("currency",))
    with warehouse.transaction() as db:
        rows = [{"connection_name": c, "id": str(i), "views": i} for c in "ab" for i in range(3)]
        warehouse.upsert(db, videos, rows, ("connection_name", "id"), "load-1")
        warehouse.upsert(db, custom, [{"connection_name": "a"}], ("connection_name",), "load-1")
        warehouse.upsert(db, other, [{"currency": "EUR"}], ("currency",), "load-1")


def check_purge(url: str) -> None:
    engine = make_engine(url)
    warehouse = Warehouse(engine)
    fill(warehouse)
    # A table the user made with the column is purged too; a table without it is left alone.
    assert tables_with_connection_column(engine) == ["my_notes", "tiktok_videos"]
    assert purge_connection(engine, "a") == {"my_notes": 1, "tiktok_videos": 3}
    assert warehouse.count("tiktok_videos", connection_name="a") == 0
    assert warehouse.count("tiktok_videos", connection_name="b") == 3
    assert warehouse.count("fx_rates") == 1
    assert purge_connection(engine, "a") == {"my_notes": 0, "tiktok_videos": 0}  # idempotent
    engine.dispose()


def test_purge_on_sqlite(tmp_path):
    check_purge(f"sqlite:///{tmp_path / 'warehouse.db'}")


@pytest.mark.postgres
def test_purge_on_postgresql(postgres_url):
    check_purge(postgres_url)


def test_audit_records_one_row_per_table_with_when_and_which_command(tmp_path):
    log = AuditLog(make_engine(f"sqlite:///{tmp_path / 'state.db'}"), now=lambda: 1_800_000_000.0)
    log.record(
        "a",
        "purged",
        "connections disconnect --purge",
        "4 rows",
        removed={"tiktok_videos": 3, "my_notes": 1},
    )
    events = log.events("a")
    assert [(e.event, e.warehouse_table, e.rows_removed) for e in events] == [
        ("purged", None, None),
        ("purged", "my_notes", 1),
        ("purged", "tiktok_videos", 3),
    ]
    assert {(e.command, e.at) for e in events} == {("connections disconnect --purge", 1.8e9)}

"""The PostgreSQL COPY path's edges, on a real server (and SQLite where the case exists there too).

Each test loads rows through `Warehouse.upsert` into a table a user has altered (numeric and naive
timestamp columns, a NOT NULL column), or with values PostgreSQL refuses, or while "another
transaction" changes the rows between our look and our write, then reads the table back.
"""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

import resources.warehouse.load as warehouse_module
from resources.database import make_engine
from resources.warehouse.store import Warehouse, WarehouseError

COLUMNS = [("id", "string"), ("rate", "float"), ("at", "datetime"), ("note", "string")]
KEY = ("id",)


@pytest.fixture
def pg(postgres_url):
    wh = Warehouse(make_engine(postgres_url))
    yield wh
    wh.engine.dispose()


def row(i: int, **values) -> dict:
    return {
        "id": str(i),
        "rate": i / 4,
        "at": datetime(2026, 1, 1, tzinfo=UTC),
        "note": "ok",
    } | values


def load(wh: Warehouse, rows: list[dict], load_id: str = "r1") -> int:
    table = wh.ensure_table("facts", COLUMNS, KEY)
    with wh.transaction() as db:
        return wh.upsert(db, table, rows, KEY, load_id)


def alter(wh: Warehouse, sql: str) -> None:
    with wh.engine.begin() as db:
        db.execute(sa.text(sql))
    wh.ensure_table("facts", COLUMNS, KEY)  # refreshes the reflected table


@pytest.mark.postgres
def test_a_numeric_column_falls_back_to_row_upserts(pg):
    load(pg, [row(1)])
    alter(pg, "ALTER TABLE facts ALTER COLUMN rate TYPE NUMERIC(12, 4)")  # no binary COPY for it
    assert load(pg, [row(1, rate=0.5), row(2)], load_id="r2") == 2
    assert {r["id"]: float(r["rate"]) for r in pg.rows("facts")} == {"1": 0.5, "2": 0.5}


@pytest.mark.postgres
def test_a_timestamp_without_time_zone_column_gets_utc_values(pg):
    load(pg, [row(1)])
    alter(pg, "ALTER TABLE facts ALTER COLUMN at TYPE TIMESTAMP")
    at_noon_in_paris = datetime.fromisoformat("2026-01-02T12:00:00+01:00")
    load(pg, [row(1, at=at_noon_in_paris), row(2, at=date(2026, 1, 3))], load_id="r2")
    stored = {r["id"]: r["at"] for r in pg.rows("facts")}
    assert stored == {"1": datetime(2026, 1, 2, 11, 0), "2": datetime(2026, 1, 3, 0, 0)}


@pytest.mark.postgres
def test_dates_and_naive_datetimes_into_a_timestamptz_column_are_utc(pg):
    load(pg, [row(1, at=date(2026, 1, 3)), row(2, at=datetime(2026, 1, 3, 8, 30))])
    stored = {r["id"]: r["at"] for r in pg.rows("facts")}
    assert stored == {
        "1": datetime(2026, 1, 3, tzinfo=UTC),
        "2": datetime(2026, 1, 3, 8, 30, tzinfo=UTC),
    }


@pytest.mark.postgres
def test_text_postgresql_cannot_store_is_refused_naming_the_column(pg):
    load(pg, [row(1)])
    with pytest.raises(WarehouseError, match=r"refused a value of column note .*0x00"):
        load(pg, [row(2), row(3, note="nul \x00 byte")], load_id="r2")
    assert [r["id"] for r in pg.rows("facts")] == ["1"]


def test_a_not_null_column_a_user_added_is_named(warehouse):
    load(warehouse, [])  # creates the table
    with warehouse.engine.begin() as db:
        db.execute(sa.text("DROP TABLE facts"))
        db.execute(
            sa.text(
                "CREATE TABLE facts (id TEXT PRIMARY KEY, rate FLOAT, at TIMESTAMP, "
                "note TEXT, owner TEXT NOT NULL)"
            )
        )
    with pytest.raises(WarehouseError, match=r"owner"):
        load(warehouse, [row(1)])
    assert warehouse.count("facts") == 0


@pytest.mark.postgres
def test_a_key_inserted_by_another_transaction_meanwhile_asks_for_a_rerun(pg, monkeypatch):
    load(pg, [row(1)])
    # As if another transaction committed id 1 between our key lookup and our COPY.
    monkeypatch.setattr(warehouse_module.PostgresCopy, "_existing_keys", lambda *_: set())
    with pytest.raises(
        WarehouseError, match=r"another transaction inserted .* rerun the partition"
    ):
        load(pg, [row(1, note="again"), row(2)], load_id="r2")
    assert [(r["id"], r["note"]) for r in pg.rows("facts")] == [("1", "ok")]


@pytest.mark.postgres
def test_a_row_deleted_by_another_transaction_meanwhile_is_inserted_again(pg, monkeypatch):
    load(pg, [row(1)])
    real = warehouse_module.PostgresCopy._existing_keys
    # As if id 2 existed when we looked and was deleted before our UPDATE.
    monkeypatch.setattr(
        warehouse_module.PostgresCopy,
        "_existing_keys",
        lambda self, cur, keys: real(self, cur, keys) | ({("2",)} if len(keys) > 2 else set()),
    )
    load(pg, [row(1, note="u"), row(2, note="u"), row(3, note="u")], load_id="r2")
    assert {(r["id"], r["note"], r["_load_id"]) for r in pg.rows("facts")} == {
        ("1", "u", "r2"),
        ("2", "u", "r2"),
        ("3", "u", "r2"),
    }


@pytest.mark.postgres
def test_an_autocommit_connection_uses_row_upserts(pg):
    table = pg.ensure_table("facts", COLUMNS, KEY)
    with pg.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        assert pg.upsert_method(db) == "executemany"
        assert pg.upsert(db, table, [row(1), row(2)], KEY, "r1") == 2
    assert pg.count("facts") == 2

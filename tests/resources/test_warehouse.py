"""Warehouse upserts on real SQLite and PostgreSQL: idempotent, migrating, user columns kept."""

import pytest
import sqlalchemy as sa

from resources.database import make_engine
from resources.warehouse import Warehouse, WarehouseError

COLUMNS = [
    ("connection_name", "string"),
    ("id", "string"),
    ("title", "string"),
    ("views", "integer"),
]
KEY = ("connection_name", "id")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wh.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    wh = Warehouse(make_engine(url))
    yield wh
    with wh.engine.begin() as db:
        db.execute(sa.text('DROP TABLE IF EXISTS "videos"'))
    wh.engine.dispose()


def rows(n: int, views: int = 1) -> list[dict]:
    return [
        {"connection_name": "c1", "id": str(7 * 10**18 + i), "title": f"t{i} 🎵", "views": views}
        for i in range(n)
    ]


def load(wh: Warehouse, batch: list[dict], load_id: str = "run-1") -> int:
    table = wh.ensure_table("videos", COLUMNS, KEY)
    with wh.transaction() as db:
        return wh.upsert(db, table, batch, KEY, load_id)


def test_rerunning_a_load_never_duplicates_rows(warehouse):
    load(warehouse, rows(2500))
    load(warehouse, rows(2500, views=5), load_id="run-2")
    assert warehouse.count("videos") == 2500
    stored = warehouse.rows("videos", id=str(7 * 10**18 + 42))[0]
    assert (stored["views"], stored["_load_id"]) == (5, "run-2")
    assert stored["_synced_at"] is not None


def test_user_columns_survive_syncs(warehouse):
    load(warehouse, rows(3))
    with warehouse.engine.begin() as db:
        db.execute(sa.text('ALTER TABLE "videos" ADD COLUMN "notes" TEXT'))
        db.execute(sa.text("UPDATE \"videos\" SET notes = 'keep me'"))
    load(warehouse, rows(3, views=9), load_id="run-2")
    assert {r["notes"] for r in warehouse.rows("videos")} == {"keep me"}
    assert {r["views"] for r in warehouse.rows("videos")} == {9}


def test_new_pipeline_columns_are_added_in_place(warehouse):
    load(warehouse, rows(2))
    table = warehouse.ensure_table("videos", [*COLUMNS, ("is_aigc", "boolean")], KEY)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, [r | {"is_aigc": True} for r in rows(2)], KEY, "run-3")
    assert {r["is_aigc"] for r in warehouse.rows("videos")} == {True}


def test_a_failed_partition_load_writes_nothing(warehouse):
    table = warehouse.ensure_table("videos", COLUMNS, KEY)
    bad = [*rows(1500), {"connection_name": "c1", "id": None, "title": "x", "views": 1}]
    with pytest.raises(sa.exc.IntegrityError), warehouse.transaction() as db:
        warehouse.upsert(db, table, bad, KEY, "run-1")
    assert warehouse.count("videos") == 0


@pytest.mark.parametrize("name", ["videos; DROP TABLE x", "Videos", "1videos", "a" * 64, ""])
def test_identifiers_that_look_like_sql_are_refused(warehouse, name):
    with pytest.raises(WarehouseError, match="invalid table name"):
        warehouse.ensure_table(name, COLUMNS, KEY)

"""Table migrations on real SQLite and PostgreSQL: what `ensure_table` adds, refuses and accepts.

Each test creates a table (through the loader or by hand, as a user would), calls `ensure_table`
with changed pipeline columns, and reads the database's catalog back: added columns appear, a
changed type or key is refused with the fix and changes nothing.
"""

import pytest
import sqlalchemy as sa

from resources.database import make_engine
from resources.warehouse.store import Warehouse, WarehouseError

COLUMNS = [("connection_name", "string"), ("id", "string"), ("views", "integer")]
KEY = ("connection_name", "id")


def column_names(wh: Warehouse, table: str) -> list[str]:
    return [col["name"] for col in sa.inspect(wh.engine).get_columns(table)]


def test_a_changed_column_type_is_refused_with_the_fix_and_nothing_changes(warehouse):
    warehouse.ensure_table("videos", COLUMNS, KEY)
    changed = [("connection_name", "string"), ("id", "string"), ("views", "string")]
    with pytest.raises(WarehouseError) as refused:
        warehouse.ensure_table("videos", [*changed, ("likes", "integer")], KEY)
    message = str(refused.value)
    assert "views is BIGINT, now string" in message
    assert "`type: integer` for views in the mapping file" in message
    assert 'ALTER TABLE videos ALTER COLUMN "views" TYPE' in message
    assert 'RENAME COLUMN "views" TO "views_old"' in message
    assert "likes" not in column_names(warehouse, "videos")  # checked before anything is added


def test_the_documented_sqlite_fix_lets_the_next_sync_add_the_new_type(tmp_path):
    wh = Warehouse(make_engine(f"sqlite:///{tmp_path / 'wh.db'}"))
    wh.ensure_table("videos", COLUMNS, KEY)
    with wh.engine.begin() as db:
        db.execute(sa.text('ALTER TABLE videos RENAME COLUMN "views" TO "views_old"'))
    table = wh.ensure_table("videos", [*COLUMNS[:2], ("views", "string")], KEY)
    assert isinstance(table.c.views.type, sa.Text) and "views_old" in table.c


def test_a_changed_key_is_refused(warehouse):
    warehouse.ensure_table("videos", COLUMNS, KEY)
    with pytest.raises(
        WarehouseError, match=r"primary key \(connection_name, id\) but the pipeline"
    ):
        warehouse.ensure_table("videos", COLUMNS, ("id",))


def test_a_user_table_with_a_unique_index_on_the_key_is_used_as_is(warehouse):
    with warehouse.engine.begin() as db:
        db.execute(
            sa.text(
                "CREATE TABLE videos (connection_name TEXT NOT NULL, id TEXT NOT NULL, notes TEXT)"
            )
        )
        db.execute(sa.text("CREATE UNIQUE INDEX videos_key ON videos (id, connection_name)"))
        db.execute(sa.text("INSERT INTO videos VALUES ('c1', '1', 'mine')"))
    table = warehouse.ensure_table("videos", COLUMNS, KEY)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, [{"connection_name": "c1", "id": "1", "views": 3}], KEY, "r1")
    assert [(r["notes"], r["views"]) for r in warehouse.rows("videos")] == [("mine", 3)]
    assert column_names(warehouse, "videos") == [
        "connection_name",
        "id",
        "notes",
        "views",
        "_synced_at",
        "_load_id",
    ]


def test_ensure_table_twice_is_a_no_op(warehouse):
    first = warehouse.ensure_table("videos", COLUMNS, KEY)
    second = warehouse.ensure_table("videos", COLUMNS, KEY)
    assert [c.name for c in first.columns] == [c.name for c in second.columns]


@pytest.mark.parametrize(
    ("columns", "key", "match"),
    [
        pytest.param(
            [*COLUMNS[:2], ("views", "intger")], KEY, "unknown column type 'intger'", id="type"
        ),
        pytest.param(
            [*COLUMNS, ("views", "integer")],
            KEY,
            r"\['views'\] are declared more than once",
            id="repeat",
        ),
        pytest.param(COLUMNS, ("open_id",), r"the key \(open_id\) must be one or more", id="key"),
        pytest.param(COLUMNS, (), r"the key \(none\)", id="no-key"),
        pytest.param([("Views", "integer")], KEY, "invalid column name 'Views'", id="name"),
    ],
)
def test_bad_declarations_are_refused_before_any_ddl(warehouse, columns, key, match):
    with pytest.raises(WarehouseError, match=match):
        warehouse.ensure_table("videos", columns, key)
    assert not warehouse.has_table("videos")

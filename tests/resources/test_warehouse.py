"""Warehouse upserts on real SQLite and PostgreSQL: rows in, rows read back.

Every test writes through `Warehouse.upsert` (executemany on SQLite, binary COPY on PostgreSQL)
and reads the table back: idempotent reruns, user columns kept, streaming in chunks, mixed new and
existing keys, typed values, and a clear error (with nothing written) for each kind of bad row.
"""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

import resources.warehouse.load as warehouse_module
from resources.database import make_engine
from resources.warehouse.store import Warehouse, WarehouseError

COLUMNS = [
    ("connection_name", "string"),
    ("id", "string"),
    ("title", "string"),
    ("views", "integer"),
]
KEY = ("connection_name", "id")
FIRST_ID = 7 * 10**18  # TikTok video ids are 19 digits, above 2**53: they must stay text


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 100 rows, so a few hundred rows cross several chunk boundaries."""
    monkeypatch.setattr(warehouse_module, "CHUNK_ROWS", 100)
    monkeypatch.setattr(warehouse_module, "COPY_CHUNK_ROWS", 100)


def rows(n: int, views: int = 1, start: int = 0) -> list[dict]:
    return [
        {"connection_name": "c1", "id": str(FIRST_ID + i), "title": f"t{i} 🎵 día", "views": views}
        for i in range(start, start + n)
    ]


def load(wh: Warehouse, batch: list[dict], load_id: str = "run-1", **kwargs) -> int:
    table = wh.ensure_table("videos", COLUMNS, KEY)
    with wh.transaction() as db:
        return wh.upsert(db, table, batch, KEY, load_id, **kwargs)


def views_by_id(wh: Warehouse) -> dict[str, int]:
    return {row["id"]: row["views"] for row in wh.rows("videos")}


def test_rerunning_a_load_never_duplicates_rows(warehouse):
    assert load(warehouse, rows(2500)) == 2500
    assert load(warehouse, rows(2500, views=5), load_id="run-2") == 2500
    assert warehouse.count("videos") == 2500
    stored = warehouse.rows("videos", id=str(FIRST_ID + 42))[0]
    assert (stored["views"], stored["_load_id"], stored["title"]) == (5, "run-2", "t42 🎵 día")
    assert stored["_synced_at"] is not None


def test_user_columns_survive_syncs(warehouse):
    load(warehouse, rows(3))
    with warehouse.engine.begin() as db:
        db.execute(sa.text("ALTER TABLE \"videos\" ADD COLUMN notes TEXT NOT NULL DEFAULT ''"))
        db.execute(sa.text("UPDATE \"videos\" SET notes = 'keep me'"))
    load(warehouse, rows(5, views=9), load_id="run-2")  # 3 updates, 2 inserts
    notes = {row["id"]: row["notes"] for row in warehouse.rows("videos")}
    assert sorted(notes.values()) == ["", "", "keep me", "keep me", "keep me"]
    assert set(views_by_id(warehouse).values()) == {9}


def test_only_owned_columns_move_on_update(warehouse):
    load(warehouse, rows(2, views=1))
    changed = [row | {"title": "new title", "views": 7} for row in rows(3)]
    load(warehouse, changed, load_id="run-2", owned=["views"])
    by_id = {row["id"]: row for row in warehouse.rows("videos")}
    assert [by_id[str(FIRST_ID + i)]["title"] for i in range(3)] == [
        "t0 🎵 día",
        "t1 🎵 día",
        "new title",
    ]
    assert {row["views"] for row in by_id.values()} == {7}


def test_new_pipeline_columns_are_added_in_place(warehouse):
    load(warehouse, rows(2))
    table = warehouse.ensure_table("videos", [*COLUMNS, ("is_aigc", "boolean")], KEY)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, [r | {"is_aigc": True} for r in rows(2)], KEY, "run-3")
    assert {r["is_aigc"] for r in warehouse.rows("videos")} == {True}


def test_rows_stream_chunk_by_chunk(warehouse, small_chunks):
    table = warehouse.ensure_table("videos", COLUMNS, KEY)
    stored_when_asked: dict[int, int] = {}

    def produce(db):
        for i, row in enumerate(rows(450)):
            if i % 100 == 0:  # the previous chunk is written before the next one is read
                count = sa.select(sa.func.count()).select_from(table)
                stored_when_asked[i] = db.execute(count).scalar_one()
            yield row

    with warehouse.transaction() as db:
        assert warehouse.upsert(db, table, produce(db), KEY, "run-1") == 450
    assert stored_when_asked == {0: 0, 100: 100, 200: 200, 300: 300, 400: 400}
    assert warehouse.count("videos") == 450


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(range(40, 60), id="keys-inside-a-chunk-whose-ends-are-new"),
        pytest.param(range(0, 300, 3), id="every-third-key"),
        pytest.param(range(100, 200), id="a-whole-chunk"),
    ],
)
def test_mixed_new_and_existing_keys_in_one_load(warehouse, small_chunks, stored):
    load(warehouse, [rows(1, views=1, start=i)[0] for i in stored])
    assert load(warehouse, rows(300, views=2), load_id="run-2") == 300
    assert views_by_id(warehouse) == {str(FIRST_ID + i): 2 for i in range(300)}
    assert {row["_load_id"] for row in warehouse.rows("videos")} == {"run-2"}


def test_many_upserts_in_one_transaction(warehouse, monkeypatch):
    # Like the video sync: one transaction, one upsert per chunk of videos, past the savepoint cap.
    monkeypatch.setattr(warehouse_module, "MAX_COPY_SAVEPOINTS", 3)
    table = warehouse.ensure_table("videos", COLUMNS, KEY)
    with warehouse.transaction() as db:
        for start in range(0, 100, 10):
            warehouse.upsert(db, table, rows(10, start=start), KEY, "run-1")
            warehouse.upsert(db, table, rows(5, views=3, start=start), KEY, "run-1")
    assert warehouse.count("videos") == 100
    assert sorted(views_by_id(warehouse).values()) == [1] * 50 + [3] * 50


def test_values_keep_their_types(warehouse):
    columns = [
        ("id", "string"),
        ("payload", "json"),
        ("day", "date"),
        ("at", "datetime"),
        ("rate", "float"),
        ("flag", "boolean"),
        ("big", "integer"),
    ]
    table = warehouse.ensure_table("typed", columns, ("id",))
    row = {
        "id": "a",
        "payload": {"tags": ["fyp", "café"], "n": 1},
        "day": date(2026, 1, 2),
        "at": datetime(2026, 1, 2, 3, 4, 5),  # naive: taken as UTC
        "rate": 0.125,
        "flag": False,
        "big": 2**62,
    }
    with warehouse.transaction() as db:
        warehouse.upsert(
            db, table, [row, {**row, "id": "b", "payload": None, "at": None}], ("id",), "r"
        )
    stored = {r["id"]: r for r in warehouse.rows("typed")}
    a = stored["a"]
    assert (a["payload"], a["day"], a["rate"], a["flag"], a["big"]) == (
        row["payload"],
        row["day"],
        0.125,
        False,
        2**62,
    )
    assert a["at"].replace(tzinfo=a["at"].tzinfo or UTC) == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert (stored["b"]["payload"], stored["b"]["at"]) == (None, None)


def test_synced_at_comes_from_the_injected_clock(warehouse):
    moment = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    clocked = Warehouse(warehouse.engine, now=lambda: moment)
    load(clocked, rows(2))
    stored = clocked.rows("videos")[0]["_synced_at"]
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == moment


def test_schema_qualified_table_names(warehouse):
    with warehouse.engine.connect() as db:
        schema = (
            "main"
            if db.dialect.name == "sqlite"
            else db.execute(sa.text("SELECT current_schema()")).scalar_one()
        )
    name = f"{schema}.videos"
    table = warehouse.ensure_table(name, COLUMNS, KEY)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, rows(3), KEY, "r1")
        warehouse.upsert(db, table, rows(3, views=4), KEY, "r2")
    assert warehouse.has_table(name) and warehouse.count(name) == 3
    assert {r["views"] for r in warehouse.rows(name)} == {4}


def test_latest_rows_per_entity(warehouse):
    columns = [("c", "string"), ("video", "string"), ("day", "date"), ("views", "integer")]
    key = ("c", "video", "day")
    table = warehouse.ensure_table("daily", columns, key)
    snapshots = [("a", "v1", 1, 10), ("a", "v1", 2, 12), ("a", "v1", 5, 20), ("a", "v2", 1, 7)]
    snapshots += [("a", "v3", 5, 1), ("b", "v1", 9, 99)]
    rows = [{"c": c, "video": v, "day": date(2026, 1, d), "views": n} for c, v, d, n in snapshots]
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, rows, key, "r")

    def views(skip: int) -> dict[str, tuple[date, int]]:
        found = warehouse.latest_rows("daily", "video", "day", skip=skip, c="a")
        return {row["video"]: (row["day"], row["views"]) for row in found}

    assert views(0) == {
        "v1": (date(2026, 1, 5), 20),
        "v2": (date(2026, 1, 1), 7),
        "v3": (date(2026, 1, 5), 1),
    }
    assert views(1) == {"v1": (date(2026, 1, 2), 12)}  # v2 and v3 have a single snapshot


def test_postgresql_loads_through_copy_not_row_inserts(warehouse):
    statements: list[str] = []
    sa.event.listen(warehouse.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    load(warehouse, rows(500))
    load(warehouse, rows(500, views=2), load_id="run-2")
    with warehouse.engine.connect() as db:
        method = warehouse.upsert_method(db)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    if warehouse.engine.dialect.name == "postgresql":
        assert method == "copy" and inserts == []  # COPY runs on the driver, not through SQLAlchemy
    else:
        assert method == "executemany" and len(inserts) == 2
    assert warehouse.count("videos") == 500


# --- bad rows: a clear error, and the partition's transaction writes nothing -----------------


def assert_refused(wh: Warehouse, batch: list[dict], match: str) -> None:
    load(wh, rows(5), load_id="before")
    with pytest.raises(WarehouseError, match=match):
        load(wh, batch, load_id="bad")
    assert wh.count("videos") == 5
    assert {row["_load_id"] for row in wh.rows("videos")} == {"before"}


def test_a_row_without_its_key_writes_nothing(warehouse):
    bad = [*rows(1500, start=10), {"connection_name": "c1", "id": None, "title": "x", "views": 1}]
    assert_refused(warehouse, bad, r"row 1501 has no value for key column id")


def test_a_repeated_key_writes_nothing(warehouse, small_chunks):
    bad = [*rows(150, start=10), rows(1, start=20)[0]]
    assert_refused(
        warehouse,
        bad,
        r"row 151 repeats the key \(connection_name='c1', id='7000000000000000020'\)",
    )


def test_rows_with_other_columns_write_nothing(warehouse):
    bad = [*rows(3, start=10), {**rows(1, start=50)[0], "unexpected": 1}]
    assert_refused(
        warehouse, bad, r"row 4 has other columns than the first row .*extra: unexpected"
    )
    missing = [*rows(3, start=10), {"connection_name": "c1", "id": "9"}]
    assert_refused(warehouse, missing, r"row 4 .*missing: title, views")


def test_rows_without_a_key_column_at_all_are_refused(warehouse):
    assert_refused(warehouse, [{"connection_name": "c1", "title": "x"}], r"no key column id")


def test_a_column_the_table_lacks_is_refused(warehouse):
    assert_refused(warehouse, [r | {"likes": 1} for r in rows(2)], r"has no column likes")


@pytest.mark.postgres
def test_postgresql_refuses_a_value_of_the_wrong_type(postgres_url):
    wh = Warehouse(make_engine(postgres_url))
    bad = [*rows(3, start=10), {**rows(1, start=50)[0], "views": "12"}]
    assert_refused(wh, bad, r"row 4, column views \(int8\) cannot hold str '12'")


@pytest.mark.parametrize(
    "name", ["videos; DROP TABLE x", "Videos", "1videos", "a" * 64, "", "a.b.c"]
)
def test_identifiers_that_look_like_sql_are_refused(warehouse, name):
    with pytest.raises(WarehouseError, match=r"invalid (table|schema) name"):
        warehouse.ensure_table(name, COLUMNS, KEY)

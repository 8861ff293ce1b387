"""Two writers at once on real SQLite and PostgreSQL: `ensure_table` races and concurrent loads.

The deterministic tests let a second connection create the table (or add the column) right before
our own DDL runs, the window two processes hit when their first syncs start together; the last test
starts two real processes that create and fill one fresh table at the same moment.
"""

import multiprocessing

import pytest
import sqlalchemy as sa

from resources.database import make_engine
from resources.warehouse.store import Warehouse

COLUMNS = [("connection_name", "string"), ("id", "string"), ("views", "integer")]
KEY = ("connection_name", "id")
OTHER_PROCESS_DDL = (
    "CREATE TABLE videos (connection_name TEXT NOT NULL, id TEXT NOT NULL, views BIGINT, "
    '"_synced_at" TIMESTAMP, "_load_id" TEXT, '
    "CONSTRAINT pk_videos PRIMARY KEY (connection_name, id))"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wh.db'}"
    return request.getfixturevalue("postgres_url")


def run_before_our(
    engine: sa.Engine, statement_start: str, other: sa.Engine, ddl: str
) -> list[str]:
    """Run `ddl` on `other` (committed) just before `engine` first executes `statement_start`."""
    done: list[str] = []

    def interpose(_conn, _cursor, statement, *_args) -> None:
        if not done and statement.lstrip().upper().startswith(statement_start):
            with other.begin() as db:
                db.execute(sa.text(ddl))
            done.append(statement)

    sa.event.listen(engine, "before_cursor_execute", interpose)
    return done


def test_a_table_created_by_another_process_meanwhile_is_used(url):
    ours, other = make_engine(url), make_engine(url)
    raced = run_before_our(ours, "CREATE TABLE", other, OTHER_PROCESS_DDL)
    table = Warehouse(ours).ensure_table("videos", COLUMNS, KEY)
    assert raced, "the other process's CREATE TABLE did not run inside the window"
    assert [c.name for c in table.columns] == [
        "connection_name",
        "id",
        "views",
        "_synced_at",
        "_load_id",
    ]


def test_a_column_added_by_another_process_meanwhile_is_used(url):
    ours, other = make_engine(url), make_engine(url)
    Warehouse(ours).ensure_table("videos", COLUMNS, KEY)
    raced = run_before_our(
        ours, "ALTER TABLE", other, 'ALTER TABLE videos ADD COLUMN "likes" BIGINT'
    )
    table = Warehouse(ours).ensure_table("videos", [*COLUMNS, ("likes", "integer")], KEY)
    assert raced and "likes" in table.c


def create_and_fill(url, connection, start, results) -> None:
    """One sync's first load in its own process: make the table, then upsert its rows."""
    wh = Warehouse(make_engine(url))
    start.wait(timeout=60)
    table = wh.ensure_table("videos", COLUMNS, KEY)
    rows = [{"connection_name": connection, "id": str(i), "views": i} for i in range(2000)]
    with wh.transaction() as db:
        results.put((connection, wh.upsert(db, table, rows, KEY, f"run-{connection}")))


def test_two_processes_create_and_fill_one_table_at_once(url):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=create_and_fill, args=(url, name, start, results)) for name in "ab"
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in workers) == [("a", 2000), ("b", 2000)]
    wh = Warehouse(make_engine(url))
    assert (wh.count("videos", connection_name="a"), wh.count("videos", connection_name="b")) == (
        2000,
        2000,
    )

"""Tables created by several processes at once: the state tables of runs starting together.

Runs that start at the same moment on a fresh state database all create its tables (leases, sync
log, push state). On PostgreSQL the losers of a concurrent CREATE TABLE get a unique violation on
the catalog rather than a wait; `create_tables` must leave every caller with the tables.
"""

import threading

import pytest
import sqlalchemy as sa

from resources.database import create_tables, make_engine


@pytest.mark.postgres
def test_concurrent_creation_of_the_same_tables_succeeds_everywhere(postgres_url):
    barrier, errors = threading.Barrier(6), []

    def create() -> None:
        metadata = sa.MetaData()
        for name in ("race_a", "race_b", "race_c"):
            sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True))
        engine = make_engine(postgres_url)
        barrier.wait()
        try:
            create_tables(metadata, engine)
        except Exception as err:  # collected: the assertion below names it
            errors.append(err)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    inspector = sa.inspect(make_engine(postgres_url))
    assert {"race_a", "race_b", "race_c"} <= set(inspector.get_table_names())

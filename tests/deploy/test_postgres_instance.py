"""deploy/dagster.postgres.yaml on the real PostgreSQL: a connection's sync is stored there.

The instance is built from the shipped file (copied into a fresh DAGSTER_HOME), its storage in a
schema of the test's own; the run, its materializations and the partitions must be readable back
from PostgreSQL by a second instance object.
"""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from tests.pipelines.helpers import Harness, connect, use_live_app

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_sync_runs_on_postgres_instance_storage(simulator, tmp_path, postgres_url):
    home = tmp_path / "pg_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    # dagster-postgres runs on psycopg2 (its NOTIFY statements break on psycopg 3).
    os.environ["DAGSTER_POSTGRES_URL"] = postgres_url.replace(
        "postgresql+psycopg", "postgresql+psycopg2"
    )
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    connect(simulator, harness.store, "creator-a", account=0)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        harness.instance = instance
        result = harness.sync("creator-a")
        assert result.success
    with dg.DagsterInstance.from_config(str(home)) as reopened:
        run = reopened.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        assert reopened.get_dynamic_partitions("tiktok_connection") == ["creator-a"]
    engine = sa.create_engine(postgres_url)
    with engine.connect() as db:
        stored = db.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    engine.dispose()
    assert stored == 1

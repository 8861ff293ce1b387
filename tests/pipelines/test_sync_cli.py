"""`tiktok-crm-sync sync`: the live daily sync now, through the real CLI, on the simulator.

Live mode with the test app's credentials: connections registered through the simulator's OAuth,
then `sync NAME...`/`sync --all` run as Dagster runs in DAGSTER_HOME, and the warehouse, the
instance's runs and the command's output and exit code are read back.
"""

import os
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.instance_home import PROJECT_YAML
from pipelines.run_owner import PID_TAG
from resources import settings
from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.warehouse.store import Warehouse
from tests.pipelines.helpers import connect, use_live_app


@pytest.fixture
def store(simulator):
    use_live_app(simulator)
    os.environ["TIKTOK_API_BASE_URL"] = simulator.base_url
    os.environ["TIKTOK_AUTH_BASE_URL"] = simulator.base_url
    store = ConnectionStore(make_engine(settings.state_database_url()))
    for index, name in enumerate(["creator-a", "creator-b", "creator-c"]):
        connect(simulator, store, name, account=index)
    return store


def sync(*args: str):
    return CliRunner().invoke(main, ["sync", *args], catch_exceptions=False)


def warehouse() -> Warehouse:
    return Warehouse(make_engine(settings.warehouse_url()))


def test_sync_named_connections_as_dagster_runs(simulator, store):
    result = sync("creator-a", "creator-c")
    assert result.exit_code == 0, result.output
    assert "synced 2 of 2 connections" in result.output
    assert "tiktok_videos:" in result.output and "TikTok API calls:" in result.output
    assert {row["connection_name"] for row in warehouse().rows("tiktok_profiles")} == {
        "creator-a",
        "creator-c",
    }
    # Real runs in the instance the schedule uses, with the project's settings.
    assert (
        Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml"
    ).read_text() == PROJECT_YAML.read_text()
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].is_success


def test_sync_all_and_a_failing_connection_exit_non_zero_with_the_fix(simulator, store):
    simulator.revoke_account(1)
    result = sync("--all", "--mode", "full")
    assert result.exit_code == 1
    assert "synced 2 of 3 connections" in result.output
    assert "failed: connection 'creator-b' needs to be reconnected" in result.output
    assert "tiktok-crm-sync connections reconnect creator-b" in result.output
    assert warehouse().count("crm_videos", connection_name="creator-a") > 0


def test_unknown_connection_and_missing_names_are_refused_before_any_run(simulator, store):
    result = CliRunner().invoke(main, ["sync", "creator-a", "nobody"])
    assert result.exit_code == 1
    assert "unknown connection(s): nobody" in result.output and "connections list" in result.output
    assert CliRunner().invoke(main, ["sync"]).exit_code == 2
    assert simulator.stats()["user_info"]["requests"] == 0


def test_a_dagster_home_without_the_project_settings_is_refused(simulator, store, tmp_path):
    home = tmp_path / "elsewhere"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    result = CliRunner().invoke(main, ["sync", "creator-a"])
    assert result.exit_code == 1
    assert "concurrency.runs.max_concurrent_runs" in result.output
    assert f"cp {PROJECT_YAML}" in result.output
    assert simulator.stats()["user_info"]["requests"] == 0


def test_several_runs_execute_at_once_and_report_as_one_sync(simulator, store, monkeypatch):
    """Three batches of one: runs execute here and in a child process, and the command reports
    each connection, the failing one with its fix, and every run it made."""
    monkeypatch.setenv("SYNC_BATCH_SIZE", "1")
    simulator.revoke_account(1)
    result = sync("--all")
    assert result.exit_code == 1, result.output
    assert "synced 2 of 3 connections" in result.output
    assert "tiktok-crm-sync connections reconnect creator-b" in result.output
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) == 3
    assert all(run.run_id in result.output for run in runs)
    # The first run executed here, the others in a child (the owner tags name the executor).
    owners = {run.tags[PID_TAG] for run in runs}
    assert str(os.getpid()) in owners and len(owners) == 2
    assert {row["connection_name"] for row in warehouse().rows("tiktok_profiles")} == {
        "creator-a",
        "creator-c",
    }

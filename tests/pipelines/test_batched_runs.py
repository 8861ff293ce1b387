"""Runs over many connections: the daily schedule's batches, `sync` and backfills alike.

One run covers a range of connection partitions and syncs them concurrently in one step, each
connection through its whole chain (TikTok tables, checks, CRM tables, CRM pushes). These tests
run such ranges through the real multi-asset (Harness: real OAuth against the simulator,
temporary SQLite) and read back what the UI reads: per-partition materializations and check
evaluations with their own metadata, and the partitions Dagster counts as failed, which is what
"Failed partitions only" re-runs.
"""

import os

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from pipelines.children import run_size
from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.defs.tiktok.partitions import (
    CONNECTION_PARTITIONS_NAME,
    connection_partitions,
    partition_ranges,
)
from resources.settings import DEFAULT_BATCH_SIZE, sync_batch_size
from resources.warehouse import tiktok_tables as tables
from tests.alerts import test_failure_alerts
from tests.alerts.test_failure_alerts import evaluate_alert_sensor
from tests.crm import fixtures
from tests.crm.fixtures import use_hubspot
from tests.pipelines.helpers import Harness, connect, failure_description, use_live_app

NAMES = ["creator-a", "creator-b", "creator-c"]
WAREHOUSE_ASSETS = [
    "tiktok_profile",
    "tiktok_videos",
    tables.PROFILE_STATS_DAILY,
    tables.VIDEO_METRICS_DAILY,
    "crm_contacts",
    "crm_videos",
]
# The HubSpot fake and the clearing of CRM variables, shared with tests/crm.
_no_crm_settings, clock, hubspot = fixtures._no_crm_settings, fixtures.clock, fixtures.hubspot
receiver = test_failure_alerts.receiver  # the Slack-like webhook the alert posts to


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(NAMES):
        connect(simulator, harness.store, name, account=index)
    harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, NAMES)
    with harness.instance:
        yield harness


def materialized(harness: Harness, result: dg.ExecuteInProcessResult) -> dict[tuple, dict]:
    """(asset, partition) -> metadata of each materialization the run stored."""
    found = {}
    for entry in harness.instance.all_logs(
        result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ):
        mat = entry.asset_materialization
        key = (mat.asset_key.to_user_string(), mat.partition)
        assert key not in found, f"{key} materialized twice in one run"
        found[key] = {name: value.value for name, value in mat.metadata.items()}
    return found


def checks_by_partition(result: dg.ExecuteInProcessResult, check: str) -> dict:
    return {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == check}


def failed_partitions(harness: Harness, asset: str) -> set[str]:
    value = get_and_update_asset_status_cache_value(
        harness.instance, dg.AssetKey(asset), connection_partitions
    )
    return set(
        value.deserialize_failed_partition_subsets(connection_partitions).get_partition_keys()
    )


def test_a_range_run_materializes_every_connection_with_its_own_metadata(harness):
    result = harness.sync_range("creator-a", "creator-c")
    assert result.success, failure_description(result)
    found = materialized(harness, result)
    assert set(found) == {(asset, name) for asset in WAREHOUSE_ASSETS for name in NAMES}
    for name in NAMES:
        profile = found[("tiktok_profile", name)]
        (stored,) = harness.warehouse.rows(tables.PROFILES, connection_name=name)
        assert profile["connection"] == name
        assert profile["follower_count"] == stored["follower_count"]
        videos = harness.warehouse.rows(tables.VIDEOS, connection_name=name)
        assert found[("tiktok_videos", name)]["videos_listed"] == len(videos) > 0
    # Three accounts with different follower counts: no metadata was copied across partitions.
    assert len({found[("tiktok_profile", name)]["follower_count"] for name in NAMES}) == 3
    # Each check is evaluated per connection partition, as the UI shows it.
    keys_check = checks_by_partition(result, "videos_keys_unique_and_complete")
    assert set(keys_check) == set(NAMES) and all(e.passed for e in keys_check.values())


def test_one_failing_connection_of_fifty_fails_alone_and_the_others_complete(
    simulator,
    tmp_path,
    receiver,
    hubspot,
):
    """Issue 11: in one 50-connection run with one failing, the 49 others get their CRM tables
    and pushes in that run; the failing one is shown failed with its reason; the alert names it."""
    url, received = receiver
    os.environ["ALERT_WEBHOOK_URL"] = url
    simulator.set(accounts=50, videos_per_account=3, rate_limit_per_minute=None)
    os.environ["TIKTOK_RATE_LIMITS"] = "user_info=100000,video_list=100000,video_query=100000"
    use_live_app(simulator)
    use_hubspot(hubspot)
    harness = Harness(simulator, tmp_path)
    harness.with_pushes("hubspot")
    names = [f"creator-{index:02d}" for index in range(50)]
    for index, name in enumerate(names):
        connect(simulator, harness.store, name, account=index)
    harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, names)
    simulator.revoke_account(17)  # creator-17's grant is gone: it needs reconnecting
    with harness.instance:
        result = harness.sync_range(names[0], names[-1])
        assert not result.success
        found = materialized(harness, result)
        others = set(names) - {"creator-17"}
        for asset in (*WAREHOUSE_ASSETS, "hubspot_contacts"):
            assert {name for (a, name) in found if a == asset} == others, asset
            assert failed_partitions(harness, asset) == {"creator-17"}, asset
        crm_rows = harness.warehouse.rows("crm_contacts")
        assert {row["connection_name"] for row in crm_rows} == others
        assert len(hubspot.records()) == 49  # every other connection's contact was pushed
        description = failure_description(result)
        assert description.startswith("1 of 50 connections failed: connection 'creator-17' needs")
        assert "tiktok-crm-sync connections reconnect creator-17" in description
        evaluate_alert_sensor(harness, result)
    [payload] = received
    assert payload["connection"] == "creator-17"
    assert payload["text"].count("connections reconnect creator-17") == 1  # said once, whole
    assert payload["text"].count("'creator-17'") == 1


def test_rerunning_the_failed_partitions_completes_the_run_without_duplicates(harness, simulator):
    simulator.revoke_account(1)
    assert not harness.sync_range("creator-a", "creator-c").success
    counts_before = {
        n: len(harness.warehouse.rows(tables.VIDEOS, connection_name=n)) for n in NAMES
    }
    connect(simulator, harness.store, "creator-b", account=1)  # the user reconnects
    # "Failed partitions only": just creator-b, every asset of it.
    for asset in WAREHOUSE_ASSETS:
        assert failed_partitions(harness, asset) == {"creator-b"}, asset
    assert harness.sync("creator-b").success
    for asset in WAREHOUSE_ASSETS:
        assert not failed_partitions(harness, asset), asset
    for name in NAMES:
        videos = harness.warehouse.rows(tables.VIDEOS, connection_name=name)
        assert len({row["id"] for row in videos}) == len(videos) > 0
        if name != "creator-b":
            assert len(videos) == counts_before[name]
        assert len(harness.warehouse.rows("crm_videos", connection_name=name)) == len(videos)


def test_batch_size_comes_from_the_environment():
    assert sync_batch_size({}) == DEFAULT_BATCH_SIZE
    assert sync_batch_size({"SYNC_BATCH_SIZE": "200"}) == 200
    with pytest.raises(ValueError, match="BACKFILL_BATCH_SIZE is now SYNC_BATCH_SIZE"):
        sync_batch_size({"BACKFILL_BATCH_SIZE": "40"})  # the old name is refused, never ignored
    for bad in ("0", "-3", "many", "1.5", "10001"):
        with pytest.raises(ValueError, match="SYNC_BATCH_SIZE must be a whole number"):
            sync_batch_size({"SYNC_BATCH_SIZE": bad})


@pytest.mark.parametrize(
    ("count", "batch", "size"),
    [
        (99, 500, 500),  # too few to pay a second process's start-up: one run
        (100, 500, 50),  # enough: two runs, two cores
        (1000, 500, 500),  # the batch size already makes two runs
        (5000, 500, 500),  # and caps every run
        (200, 60, 60),
    ],
)
def test_a_fleet_worth_two_processes_is_split_into_two_runs(count, batch, size):
    assert run_size(count, batch) == size


@pytest.mark.parametrize(
    ("ordered", "wanted", "size", "ranges"),
    [
        ("abcdef", "abcdef", 4, [("a", "d"), ("e", "f")]),  # split every `size`
        ("abcdef", "abdef", 10, [("a", "b"), ("d", "f")]),  # split around an unwanted one
        ("abc", "", 10, []),
        ("abc", "c", 1, [("c", "c")]),
    ],
)
def test_partition_ranges_cover_exactly_the_wanted_connections(ordered, wanted, size, ranges):
    assert partition_ranges(list(ordered), wanted, size) == ranges


def test_every_asset_of_the_daily_job_runs_in_batches_in_one_step():
    from pipelines.definitions import defs

    graph = defs().resolve_asset_graph()
    job = defs().resolve_job_def(DAILY_SYNC_JOB)
    keys = job.asset_layer.executable_asset_keys
    assert keys
    for key in keys:
        policy = graph.get(key).backfill_policy
        assert policy == dg.BackfillPolicy.multi_run(DEFAULT_BATCH_SIZE), key
    assert [node.name for node in job.graph.node_defs] == ["connection_sync"]


def test_a_range_push_pushes_each_connection_with_its_own_reject_rate_check(harness, hubspot):
    use_hubspot(hubspot)
    harness.with_pushes("hubspot")
    dry = harness.sync_range("creator-a", "creator-c", config={"dry_run": True})
    assert dry.success, failure_description(dry)
    observed = {
        entry.asset_observation.partition: entry.asset_observation.metadata
        for entry in harness.instance.all_logs(
            dry.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION
        )
    }
    assert set(observed) == set(NAMES) and hubspot.request_count == 0
    result = harness.sync_range("creator-a", "creator-c")
    assert result.success, failure_description(result)
    found = materialized(harness, result)
    assert {n for (a, n) in found if a == "hubspot_contacts"} == set(NAMES)
    assert all(found[("hubspot_contacts", n)]["created"] == 1 for n in NAMES)
    rates = checks_by_partition(result, "reject_rate_below_threshold")
    assert set(rates) == set(NAMES) and all(e.passed for e in rates.values())
    assert len(hubspot.records()) == 3

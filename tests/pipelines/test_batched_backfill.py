"""Batched backfill runs: several connections in one run, each succeeding or failing alone.

A backfill launched from the UI runs each asset over a range of connection partitions
(`connection_backfill_policy`). These tests run such a range through the real assets and checks
(Harness: real OAuth against the simulator, temporary SQLite) and read back what the UI reads:
per-partition materializations with their own metadata, and the partitions Dagster counts as
failed, which is what "Failed partitions only" re-runs.
"""

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.defs.crm.push import build_push_asset, push_mappings
from pipelines.defs.quality.checks import CHECKS
from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.defs.tiktok import tables
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME, connection_partitions
from resources.crm.resource import CrmResource
from resources.settings import DEFAULT_BACKFILL_BATCH_SIZE, backfill_batch_size
from tests.crm import fixtures
from tests.crm.fixtures import use_hubspot
from tests.pipelines.helpers import Harness, connect, failure_description, use_live_app

NAMES = ["creator-a", "creator-b", "creator-c"]
# The HubSpot fake and the clearing of CRM variables, shared with tests/crm.
_no_crm_settings, clock, hubspot = fixtures._no_crm_settings, fixtures.clock, fixtures.hubspot


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(NAMES):
        connect(simulator, harness.store, name, account=index)
    harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, NAMES)
    harness.assets = [*harness.assets, *CHECKS]
    with harness.instance:
        yield harness


def sync_range(harness: Harness, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        harness.assets,
        resources=harness.resources,
        instance=harness.instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


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


def failed_partitions(harness: Harness, asset: str) -> set[str]:
    value = get_and_update_asset_status_cache_value(
        harness.instance, dg.AssetKey(asset), connection_partitions
    )
    return set(
        value.deserialize_failed_partition_subsets(connection_partitions).get_partition_keys()
    )


def test_a_range_run_materializes_every_connection_with_its_own_metadata(harness, simulator):
    result = sync_range(harness, "creator-a", "creator-c")
    assert result.success
    found = materialized(harness, result)
    assets = ["tiktok_profile", "tiktok_videos", "crm_contacts", "crm_videos"]
    assert set(found) == {(asset, name) for asset in assets for name in NAMES}
    for name in NAMES:
        profile = found[("tiktok_profile", name)]
        (stored,) = harness.warehouse.rows(tables.PROFILES, connection_name=name)
        assert profile["connection"] == name
        assert profile["follower_count"] == stored["follower_count"]
        videos = harness.warehouse.rows(tables.VIDEOS, connection_name=name)
        assert found[("tiktok_videos", name)]["videos_listed"] == len(videos) > 0
    # Three accounts with different follower counts: no metadata was copied across partitions.
    assert len({found[("tiktok_profile", name)]["follower_count"] for name in NAMES}) == 3
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["videos_keys_unique_and_complete"].passed
    assert checks["videos_keys_unique_and_complete"].metadata["connections_checked"].value == 3


def test_one_failing_connection_fails_alone_and_is_the_only_failed_tiktok_partition(
    harness, simulator
):
    simulator.revoke_account(1)  # creator-b's grant is gone: needs reconnect
    result = sync_range(harness, "creator-a", "creator-c")
    assert not result.success
    description = failure_description(result)
    assert description.startswith("1 of 3 connections failed: creator-b:")
    assert "tiktok-crm-sync connections reconnect creator-b" in description
    found = materialized(harness, result)
    for asset in ("tiktok_profile", "tiktok_videos"):
        assert {name for (a, name) in found if a == asset} == {"creator-a", "creator-c"}
        assert failed_partitions(harness, asset) == {"creator-b"}
    # What is downstream of a failed step does not run in that run: the batch's CRM tables
    # wait for the re-run, and count as failed so "Failed partitions only" picks them up.
    assert not {name for (a, name) in found if a.startswith("crm_")}
    assert failed_partitions(harness, "crm_videos") == set(NAMES)
    rows = harness.warehouse.rows(tables.VIDEOS)
    assert {row["connection_name"] for row in rows} == {"creator-a", "creator-c"}


def test_rerunning_the_failed_partitions_completes_the_backfill_without_duplicates(
    harness, simulator
):
    simulator.revoke_account(1)
    assert not sync_range(harness, "creator-a", "creator-c").success
    counts_before = {
        n: len(harness.warehouse.rows(tables.VIDEOS, connection_name=n)) for n in NAMES
    }
    connect(simulator, harness.store, "creator-b", account=1)  # the user reconnects
    # "Failed partitions only": the TikTok assets of creator-b, the CRM assets of the batch.
    assert failed_partitions(harness, "tiktok_videos") == {"creator-b"}
    assert dg.materialize(
        harness.assets,
        selection=["tiktok_profile", "tiktok_videos"],
        partition_key="creator-b",
        resources=harness.resources,
        instance=harness.instance,
    ).success
    assert dg.materialize(
        harness.assets,
        selection=["crm_contacts", "crm_videos"],
        resources=harness.resources,
        instance=harness.instance,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: "creator-a",
            ASSET_PARTITION_RANGE_END_TAG: "creator-c",
        },
    ).success
    for asset in ("tiktok_profile", "tiktok_videos", "crm_contacts", "crm_videos"):
        assert not failed_partitions(harness, asset), asset
    for name in NAMES:
        videos = harness.warehouse.rows(tables.VIDEOS, connection_name=name)
        keys = {row["id"] for row in videos}
        assert len(keys) == len(videos) > 0
        if name != "creator-b":
            assert len(videos) == counts_before[name]
        assert len(harness.warehouse.rows("crm_videos", connection_name=name)) == len(videos)


def test_backfill_batch_size_comes_from_the_environment():
    assert backfill_batch_size({}) == DEFAULT_BACKFILL_BATCH_SIZE
    assert backfill_batch_size({"BACKFILL_BATCH_SIZE": "200"}) == 200
    for bad in ("0", "-3", "many", "1.5", "10001"):
        with pytest.raises(ValueError, match="BACKFILL_BATCH_SIZE must be a whole number"):
            backfill_batch_size({"BACKFILL_BATCH_SIZE": bad})


def test_every_asset_of_the_daily_job_backfills_in_batches():
    from pipelines.definitions import defs

    graph = defs().resolve_asset_graph()
    job = defs().resolve_job_def(DAILY_SYNC_JOB)
    keys = job.asset_layer.executable_asset_keys
    assert keys
    for key in keys:
        policy = graph.get(key).backfill_policy
        assert policy == dg.BackfillPolicy.multi_run(DEFAULT_BACKFILL_BATCH_SIZE), key


def test_a_range_push_pushes_each_connection_and_merges_its_reject_rate_check(harness, hubspot):
    use_hubspot(hubspot)
    asset = build_push_asset(next(m for m in push_mappings() if m.target.kind == "hubspot"))
    assert sync_range(harness, "creator-a", "creator-c").success
    crm = {"crm": CrmResource(backoff_cap_s=0.0, max_wait_s=0.0)}

    def push(**config) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [asset],
            resources=harness.resources | crm,
            instance=harness.instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: "creator-a",
                ASSET_PARTITION_RANGE_END_TAG: "creator-c",
            },
            run_config={"ops": {asset.key.to_user_string(): {"config": config}}},
        )

    dry = push(dry_run=True)
    observed = {
        entry.asset_observation.partition: entry.asset_observation.metadata
        for entry in harness.instance.all_logs(
            dry.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION
        )
    }
    assert set(observed) == set(NAMES) and hubspot.request_count == 0
    result = push()
    found = materialized(harness, result)
    assert set(found) == {("hubspot_contacts", name) for name in NAMES}
    assert all(found[("hubspot_contacts", n)]["created"] == 1 for n in NAMES)
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["connections_checked"].value == 3
    assert len(hubspot.records()) == 3

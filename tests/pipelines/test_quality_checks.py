"""Quality checks round trip: simulator -> TikTok assets -> warehouse -> checks -> CRM gating.

Each test syncs simulated connections with the Harness (real OAuth, real assets on temporary
SQLite) together with the quality checks, in one run per connection partition, after planting
bad rows straight into the warehouse where a test needs a check to fail. It reads the run's check
evaluations, step outcomes and materialization metadata back.
"""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.defs.quality.freshness import FRESHNESS_HOURS, connection_freshness
from pipelines.defs.sync.assets import build_sync_assets
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME
from resources.connections.store import ConnectionStore
from resources.crm.resource import CrmResource
from resources.database import make_engine
from resources.warehouse import tiktok_tables as tables
from services.crm_records import push_mappings, warehouse_mappings
from services.preview import markdown_cell
from services.quality import CHECKS
from tests.pipelines.helpers import (
    Harness,
    check_evaluations,
    connect,
    failure_description,
    materializations,
    metadata,
    stored_materializations,
    use_live_app,
)

PUSH = next(m for m in push_mappings() if m.name == "generic_videos")


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(["creator-a", "creator-b"]):
        connect(simulator, harness.store, name, account=index)
    return harness


def evaluations(harness: Harness, result: dg.ExecuteInProcessResult) -> dict:
    return {e.check_name: e for e in check_evaluations(harness.instance, result)}


def bad_video(harness: Harness, connection: str) -> None:
    """A video row without create_time: the incremental watermark would be wrong with it."""
    with harness.warehouse.engine.begin() as db:
        db.execute(
            sa.text(
                f"INSERT INTO {tables.VIDEOS} (connection_name, id, create_time) "
                "VALUES (:c, 'planted-1', NULL)"
            ),
            {"c": connection},
        )


def test_clean_sync_passes_every_check_of_its_own_partition(harness):
    result = harness.sync("creator-a")
    assert result.success, failure_description(result)
    found = evaluations(harness, result)
    assert set(found) == set(CHECKS)
    assert all(e.passed for e in found.values()), {n: e.description for n, e in found.items()}
    assert {e.partition for e in found.values()} == {"creator-a"}
    assert found["videos_keys_unique_and_complete"].metadata["null_create_times"].value == 0
    # The simulator shows every video publicly, so stored and profile counts agree.
    counts = found["video_count_matches_profile"].metadata
    assert counts["live_videos_stored"].value == counts["profile_video_count"].value == 45


def test_failed_blocking_check_skips_crm_assets_of_that_partition_only(harness):
    assert harness.sync("creator-a").success
    assert harness.sync("creator-b").success
    bad_video(harness, "creator-b")
    # A bad row of another connection does not fail this partition's check.
    clean = harness.sync("creator-a")
    assert clean.success and evaluations(harness, clean)["videos_keys_unique_and_complete"].passed
    # No CRM is configured: had the push run, it would fail instead of being skipped.
    harness.assets = [build_sync_assets(warehouse_mappings(), [PUSH])]
    harness.resources = harness.resources | {"crm": CrmResource(backoff_cap_s=0.0)}
    blocked = harness.sync("creator-b")
    check = evaluations(harness, blocked)["videos_keys_unique_and_complete"]
    assert not check.passed
    assert check.metadata["null_create_times"].value == 1
    materialized = {
        asset
        for asset in ("tiktok_profile", "tiktok_videos", "crm_contacts", "crm_videos")
        if stored_materializations(harness.instance, blocked, asset)
    }
    # The profile side still ran; everything fed by tiktok_videos, the CRM push too, did not.
    assert {"tiktok_profile", "tiktok_videos", "crm_contacts"} <= materialized
    assert "crm_videos" not in materialized and "generic_videos" not in materialized
    assert not blocked.success
    assert "held back because videos_keys_unique_and_complete failed" in failure_description(
        blocked
    )


def test_warning_checks_do_not_block(harness):
    assert harness.sync("creator-a").success
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with harness.warehouse.engine.begin() as db:
        # A previous snapshot with 100 videos against today's 45: more than half gone.
        db.execute(
            sa.text(
                f"INSERT INTO {tables.VIDEO_METRICS_DAILY} "
                "(connection_name, video_id, snapshot_date) VALUES ('creator-a', :v, :d)"
            ),
            [{"v": f"old-{i}", "d": yesterday} for i in range(100)],
        )
    result = harness.sync("creator-a")
    found = evaluations(harness, result)
    drop = found["video_rows_not_halved"]
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.WARN
    assert (drop.metadata["latest_rows"].value, drop.metadata["previous_rows"].value) == (45, 100)
    assert drop.metadata["previous_snapshot_date"].value == yesterday.isoformat()
    # The CRM videos still ran past the failed warning check.
    assert result.success
    assert materializations(result, "crm_videos")


def test_freshness_job_lists_stale_connections(harness):
    state = ConnectionStore(make_engine(harness.resources["state_db"].url))
    old = ConnectionStore(
        make_engine(harness.resources["state_db"].url),
        now=lambda: time.time() - (FRESHNESS_HOURS + 1) * 3600,
    )
    state.mark_synced("creator-a")
    old.mark_synced("creator-b")
    result = connection_freshness.execute_in_process(
        resources={"state_db": harness.resources["state_db"]}, raise_on_error=False
    )
    assert not result.success
    message = failure_description(result)
    assert "creator-b" in message and "creator-a" not in message
    assert "connections list" in message
    old.set_status("creator-b", "disconnected")  # only active connections must be fresh
    assert connection_freshness.execute_in_process(
        resources={"state_db": harness.resources["state_db"]}
    ).success


def run_checks(harness: Harness, *checks: str) -> dg.ExecuteInProcessResult:
    """Only these checks, for creator-a, as launched from the UI: no asset runs, no TikTok call."""
    if "creator-a" not in harness.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME):
        harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, ["creator-a"])
    keys = [dg.AssetCheckKey(dg.AssetKey(CHECKS[name][0]), name) for name in checks]
    # partition_key= is refused when no asset is selected (Dagster 1.13); the tag is what a
    # launch of a partition sets, and the checks read it as their partition key.
    return dg.materialize(
        harness.assets,
        selection=dg.AssetSelection.checks(*keys),
        resources=harness.resources,
        instance=harness.instance,
        tags={"dagster/partition": "creator-a"},
        raise_on_error=False,
    )


def test_freshness_check_runs_on_its_own(harness):
    result = run_checks(harness, "connection_synced_recently")
    [check] = result.get_asset_check_evaluations()
    assert not result.get_asset_materialization_events()
    assert (check.check_name, check.partition, check.passed) == (
        "connection_synced_recently",
        "creator-a",
        False,  # connected, never synced
    )
    assert "connections list" in check.description
    ConnectionStore(make_engine(harness.resources["state_db"].url)).mark_synced("creator-a")
    [check] = run_checks(harness, "connection_synced_recently").get_asset_check_evaluations()
    assert check.passed


def test_video_count_below_the_profile_is_explained_and_above_it_warns(harness):
    assert harness.sync("creator-a").success
    with harness.warehouse.engine.begin() as db:
        db.execute(
            sa.text(
                f"UPDATE {tables.VIDEOS} SET deleted_at = :now WHERE id = "
                f"(SELECT MIN(id) FROM {tables.VIDEOS} WHERE connection_name = 'creator-a')"
            ),
            {"now": datetime.now(UTC)},
        )
    # TikTok counts a video it does not list (private, filtered): expected, explained, no warning.
    [check] = run_checks(harness, "video_count_matches_profile").get_asset_check_evaluations()
    assert check.passed
    counts = {key: value.value for key, value in check.metadata.items()}
    assert (counts["live_videos_stored"], counts["profile_video_count"]) == (44, 45)
    assert "does not list" in counts["explanation"]
    # More live videos stored than TikTok counts: deletions were missed. That warns.
    with harness.warehouse.engine.begin() as db:
        db.execute(
            sa.text(
                f"UPDATE {tables.VIDEOS} SET deleted_at = NULL WHERE connection_name = 'creator-a'"
            )
        )
        db.execute(
            sa.text(
                f"INSERT INTO {tables.VIDEOS} (connection_name, id, create_time) "
                "VALUES ('creator-a', 'gone-on-tiktok', 1)"
            )
        )
    [check] = run_checks(harness, "video_count_matches_profile").get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "deletions were missed" in check.description


def test_video_count_is_not_compared_without_the_stats_scope(simulator, harness):
    scopes = ["user.info.basic", "user.info.profile", "video.list"]
    connect(simulator, harness.store, "no-stats", account=2, scopes=scopes)
    result = harness.sync("no-stats")
    assert result.success, failure_description(result)
    check = evaluations(harness, result)["video_count_matches_profile"]
    assert check.passed and "user.info.stats" in check.description


def test_metadata_schema_counts_and_top_videos(harness):
    result = harness.sync("creator-a")
    [sync] = harness.assets
    specs = {spec.key.to_user_string(): spec for spec in sync.specs}
    profile_schema = specs["tiktok_profile"].metadata
    columns = [c.name for c in profile_schema["dagster/column_schema"].columns]
    assert columns == [name for name, _kind in tables.PROFILE_COLUMNS]
    video_schema = specs["tiktok_videos"].metadata["dagster/column_schema"]
    assert ("deleted_at", "datetime") in [(c.name, c.type) for c in video_schema.columns]
    [event] = materializations(result, "tiktok_profile")
    assert isinstance(event.metadata["follower_count"], dg.IntMetadataValue)
    assert isinstance(event.metadata["likes_count"], dg.IntMetadataValue)
    preview = metadata(result, "tiktok_videos")["top_videos"]
    rows = [line for line in preview.splitlines()[2:]]
    stored = harness.warehouse.rows(tables.VIDEOS, connection_name="creator-a")
    views = sorted((r["view_count"] for r in stored), reverse=True)[:5]
    assert [int(row.split("|")[3]) for row in rows] == views


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("plain", "plain"),
        ("a | b", "a \\| b"),  # a pipe would start a new column
        ("line\nbreak\r\nhere", "line break here"),  # a newline would end the table row
        (None, "(untitled)"),
        ("x" * 100, "x" * 79 + "…"),  # long titles are cut
    ],
)
def test_markdown_cell_escapes(value, cell):
    assert markdown_cell(value) == cell


def test_the_sync_asset_declares_every_check():
    [sync] = [build_sync_assets(warehouse_mappings(), [])]
    declared = {key.name: key.asset_key.to_user_string() for key in sync.check_keys}
    assert declared == {name: asset for name, (asset, _blocking, _text) in CHECKS.items()}

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
from pipelines.defs.crm.push import build_push_asset, push_mappings
from pipelines.defs.quality.checks import (
    CHECKS,
    connection_synced_recently,
    quality,
    video_count_matches_profile,
)
from pipelines.defs.tiktok.assets import tiktok_profile, tiktok_videos

from pipelines.defs.quality.freshness import FRESHNESS_HOURS, connection_freshness
from pipelines.defs.quality.preview import markdown_cell
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME, connection_partitions
from resources.connections import ConnectionStore
from resources.crm.resource import CrmResource
from resources.database import make_engine
from services import tables
from tests.pipelines.helpers import Harness, connect, failure_description, metadata, use_live_app

PUSH = build_push_asset(next(m for m in push_mappings() if m.name == "generic_videos"))


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(["creator-a", "creator-b"]):
        connect(simulator, harness.store, name, account=index)
    harness.assets = [*harness.assets, *CHECKS]
    return harness


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


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
    found = evaluations(result)
    assert set(found) == {check.check_key.name for check in CHECKS}
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
    assert clean.success and evaluations(clean)["videos_keys_unique_and_complete"].passed
    # No CRM is configured: had the push run, it would fail instead of being skipped.
    harness.assets = [*harness.assets, PUSH]
    harness.resources = harness.resources | {"crm": CrmResource(backoff_cap_s=0.0)}
    blocked = harness.sync("creator-b")
    check = evaluations(blocked)["videos_keys_unique_and_complete"]
    assert not check.passed
    assert check.metadata["null_create_times"].value == 1
    materialized = {
        event.event_specific_data.materialization.asset_key.to_user_string()
        for event in blocked.get_asset_materialization_events()
    }
    # The profile side still ran; everything fed by tiktok_videos, the CRM push too, did not.
    assert {"tiktok_profile", "tiktok_videos", "crm_contacts"} <= materialized
    assert "crm_videos" not in materialized and "generic_videos" not in materialized
    started = {e.step_key for e in blocked.all_events if e.event_type_value == "STEP_START"}
    assert "crm_contacts" in started
    assert not {"crm_videos", "generic_videos"} & started
    assert not blocked.success


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
    found = evaluations(result)
    drop = found["video_rows_not_halved"]
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.WARN
    assert (drop.metadata["latest_rows"].value, drop.metadata["previous_rows"].value) == (45, 100)
    assert drop.metadata["previous_snapshot_date"].value == yesterday.isoformat()
    # The CRM videos still ran past the failed warning check.
    assert result.success
    assert "crm_videos" in {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }


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


def run_checks(harness: Harness, *checks: dg.AssetChecksDefinition) -> dg.ExecuteInProcessResult:
    """Only these checks, for creator-a, as launched from the UI: no asset runs, no TikTok call."""
    job = dg.define_asset_job(
        "checks_only",
        selection=dg.AssetSelection.checks(*checks),
        partitions_def=connection_partitions,
    )
    defs = dg.Definitions(
        assets=[tiktok_profile, tiktok_videos],
        asset_checks=CHECKS,
        jobs=[job],
        resources=harness.resources,
    )
    if "creator-a" not in harness.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME):
        harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, ["creator-a"])
    # partition_key= is refused when no asset is selected (Dagster 1.13); the tag is what a
    # launch of a partition sets, and the checks read it as their partition key.
    return defs.resolve_job_def("checks_only").execute_in_process(
        tags={"dagster/partition": "creator-a"}, instance=harness.instance, raise_on_error=False
    )


def test_freshness_check_runs_on_its_own(harness):
    result = run_checks(harness, connection_synced_recently)
    [check] = result.get_asset_check_evaluations()
    assert not result.get_asset_materialization_events()
    assert (check.check_name, check.partition, check.passed) == (
        "connection_synced_recently",
        "creator-a",
        False,  # connected, never synced
    )
    assert "connections list" in check.description
    ConnectionStore(make_engine(harness.resources["state_db"].url)).mark_synced("creator-a")
    [check] = run_checks(harness, connection_synced_recently).get_asset_check_evaluations()
    assert check.passed


def test_video_count_below_profile_warns(harness):
    assert harness.sync("creator-a").success
    with harness.warehouse.engine.begin() as db:
        db.execute(
            sa.text(
                f"UPDATE {tables.VIDEOS} SET deleted_at = :now WHERE id = "
                f"(SELECT MIN(id) FROM {tables.VIDEOS} WHERE connection_name = 'creator-a')"
            ),
            {"now": datetime.now(UTC)},
        )
    result = run_checks(harness, video_count_matches_profile)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    counts = {key: value.value for key, value in check.metadata.items()}
    assert counts == {"live_videos_stored": 44, "profile_video_count": 45}


def test_metadata_schema_counts_and_top_videos(harness):
    result = harness.sync("creator-a")
    profile_schema = tiktok_profile.specs_by_key[tiktok_profile.key].metadata
    columns = [c.name for c in profile_schema["dagster/column_schema"].columns]
    assert columns == [name for name, _kind in tables.PROFILE_COLUMNS]
    video_schema = tiktok_videos.specs_by_key[tiktok_videos.key].metadata["dagster/column_schema"]
    assert ("deleted_at", "datetime") in [(c.name, c.type) for c in video_schema.columns]
    [event] = result.asset_materializations_for_node("tiktok_profile")
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


def test_definitions_function_contributes_exactly_the_checks():
    contributed = quality()
    assert not (contributed.assets or contributed.jobs or contributed.schedules)
    assert {c.check_key.name for c in contributed.asset_checks} == {
        c.check_key.name for c in CHECKS
    }

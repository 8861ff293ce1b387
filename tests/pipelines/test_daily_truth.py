"""Issue 12: the scheduled daily sync, with default settings, is right every day.

Day 1 and day 2 go through the daily schedule as the daemon runs it: the schedule's run requests
are executed with their own tags and config on the instance. Between the days the simulator's
creators change things (simulators.tiktok.churn): they delete videos older than 30 days, edit a
caption, post new videos, and every video's metrics move. After day 2 every change must be in
`tiktok_videos`, in the day's metric snapshots (one row per live video) and in `crm_videos`.
"""

from datetime import UTC, datetime

import dagster as dg
import pytest

from pipelines.defs.sync.jobs import DAILY_SYNC_JOB, tiktok_daily_sync
from pipelines.defs.sync.schedules import SCHEDULE_NAME, tiktok_daily_sync_schedule
from resources.warehouse import tiktok_tables as tables
from simulators.tiktok import ManualClock, SimulatorConfig, TikTokSimulator
from tests.pipelines.helpers import (
    Harness,
    connect,
    failure_description,
    sync_on_simulated_clock,
    use_live_app,
)

START = datetime(2026, 6, 1, 6, tzinfo=UTC).timestamp()  # every generated video is months old
NAMES = ["creator-a", "creator-b", "creator-c"]


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture
def simulator(clock):
    config = SimulatorConfig(seed=11, accounts=3, videos_per_account=45, clock=clock)
    sim = TikTokSimulator(config)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def the_pipeline_lives_on_the_simulated_clock(monkeypatch, clock):
    sync_on_simulated_clock(monkeypatch, clock)


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(NAMES):
        connect(simulator, harness.store, name, account=index)
    with dg.instance_for_test() as instance:  # schedules need an instance with storage
        harness.instance = instance
        yield harness


def scheduled_daily_sync(harness: Harness, clock: ManualClock) -> None:
    """One tick of the daily schedule and its runs, with the defaults (no config of ours)."""
    # The schedule and job of the code location, bound to the harness's assets and resources
    # (loading the whole defs folder here would pin this test's instance for later tests).
    loaded = dg.Definitions(
        assets=harness.assets,
        jobs=[tiktok_daily_sync],
        schedules=[tiktok_daily_sync_schedule],
        resources=harness.resources,
    )
    schedule = loaded.resolve_schedule_def(SCHEDULE_NAME)
    job = loaded.resolve_job_def(DAILY_SYNC_JOB)
    with dg.build_schedule_context(
        instance=harness.instance,
        resources={key: harness.resources[key] for key in ("state_db", "warehouse")},
        scheduled_execution_time=datetime.fromtimestamp(clock(), UTC),
    ) as context:
        requests = schedule(context)
    assert len(requests) == 1  # three connections: one run
    for request in requests:
        result = job.execute_in_process(
            instance=harness.instance,
            tags=request.tags,
            run_config=request.run_config or None,
            resources=harness.resources,
            raise_on_error=False,
        )
        assert result.success, failure_description(result)


def by_id(harness: Harness, table: str, key: str, name: str) -> dict[str, dict]:
    return {row[key]: row for row in harness.warehouse.rows(table, connection_name=name)}


def test_day_two_reflects_deletions_metrics_edits_and_new_videos(harness, simulator, clock):
    scheduled_daily_sync(harness, clock)
    day_one = datetime.fromtimestamp(clock(), UTC).date()
    before = {name: by_id(harness, tables.VIDEOS, "id", name) for name in NAMES}
    changes = simulator.advance_days(1)
    day_two = datetime.fromtimestamp(clock(), UTC).date()
    assert sum(map(len, changes.deleted.values())) >= 1 and changes.captions
    scheduled_daily_sync(harness, clock)

    for account, name in enumerate(NAMES):
        videos = by_id(harness, tables.VIDEOS, "id", name)
        crm = by_id(harness, "crm_videos", "tiktok_video_id", name)
        live = {vid for vid, row in videos.items() if row["deleted_at"] is None}
        # Deleted videos (all older than 30 days) are marked, never removed; CRM rows too.
        for vid in changes.deleted[account]:
            assert videos[vid]["deleted_at"] is not None, vid
            assert crm[vid]["deleted_at"] is not None, vid
        # New videos arrived, in the table and in the CRM rows.
        for vid in changes.posted[account]:
            assert vid in live and vid in crm
        # Edited captions were picked up, in the CRM rows too.
        for vid in changes.edited[account]:
            caption = changes.captions[vid]
            assert videos[vid]["title"] == caption and crm[vid]["title"] == caption.strip()
        was_live = {vid for vid, row in before[name].items() if row["deleted_at"] is None}
        assert live == (was_live - set(changes.deleted[account])) | set(changes.posted[account])
        # One metric snapshot row per live video today; every old video's metrics moved.
        snapshots = {
            row["video_id"]: row
            for row in harness.warehouse.rows(
                tables.VIDEO_METRICS_DAILY, connection_name=name, snapshot_date=day_two
            )
        }
        assert set(snapshots) == live
        old = live - set(changes.posted[account])
        assert old and all(
            videos[vid]["view_count"] > before[name][vid]["view_count"] for vid in old
        )
        assert all(snapshots[vid]["view_count"] == videos[vid]["view_count"] for vid in live)
        assert all(crm[vid]["views"] == videos[vid]["view_count"] for vid in live)
        assert len(
            harness.warehouse.rows(
                tables.VIDEO_METRICS_DAILY, connection_name=name, snapshot_date=day_one
            )
        ) == len(before[name])

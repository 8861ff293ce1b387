"""Incremental and full video syncs: simulator -> tiktok_videos (run config) -> warehouse.

Incremental runs page newest first until the stored watermark and refresh the lookback window
through /v2/video/query/; full runs re-read everything and stamp `deleted_at` on what TikTok no
longer shows. Rows are never deleted and a video seen again is live again. The simulator's videos
predate 2026-01-01, so tests that need a lookback window covering some of them ask for a long one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME
from resources.warehouse import tiktok_videos
from services import videos as video_sync
from tests.pipelines.helpers import (
    Harness,
    connect,
    failure_description,
    metadata,
    sync_config,
    use_live_app,
)

GENEROUS_LIMITS = "user_info=60000,video_list=60000,video_query=60000"
DAY_S = 86_400


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    os.environ["TIKTOK_RATE_LIMITS"] = GENEROUS_LIMITS
    harness = Harness(simulator, tmp_path)
    connect(simulator, harness.store, "creator-a", account=0)
    # Entering the instance makes its storage Dagster's current defs-state storage for the whole
    # test; without it, materialize now and then met a collected instance ("undefined
    # DagsterInstance weakref") when run after other tests.
    with harness.instance:
        yield harness


def run(harness: Harness, **config) -> dg.ExecuteInProcessResult:
    # These tests exercise both modes; the policy's default (full) is tested in test_daily_truth.
    config = {"mode": "incremental"} | config
    result = harness.sync("creator-a", selection=["tiktok_videos"], config=config)
    assert result.success, failure_description(result)
    return result


def videos(harness: Harness) -> dict[str, dict]:
    return {row["id"]: row for row in harness.warehouse.rows("tiktok_videos")}


def forget_newest(harness: Harness, count: int) -> list[str]:
    """Remove the newest stored videos, as if the last sync ran before they were posted."""
    newest = sorted(videos(harness).values(), key=lambda row: -row["create_time"])[:count]
    ids = [row["id"] for row in newest]
    with harness.warehouse.engine.begin() as db:
        table = sa.Table("tiktok_videos", sa.MetaData(), autoload_with=db)
        db.execute(sa.delete(table).where(table.c.id.in_(ids)))
    return ids


def test_first_incremental_run_reads_everything(simulator, harness):
    meta = metadata(run(harness), "tiktok_videos")
    total = simulator.accounts[0].video_count
    assert (meta["sync_mode"], meta["videos_listed"], meta["pages"]) == ("incremental", total, 3)
    assert meta["watermark_create_time"] == "none"
    assert len(videos(harness)) == total


def test_incremental_run_stops_at_stored_videos_and_picks_up_new_ones(simulator, harness):
    run(harness)
    missing = forget_newest(harness, 5)
    meta = metadata(run(harness, lookback_days=0), "tiktok_videos")
    assert meta["pages"] == 1 and meta["stop_reason"] == "reached_stored_videos"
    # The 5 new ones, plus the newest stored one re-read (same-second posts are never skipped).
    assert meta["videos_listed"] == 6
    assert set(missing) <= set(videos(harness))
    assert len(videos(harness)) == simulator.accounts[0].video_count
    assert meta["api_requests_by_endpoint"] == "video_list=1"


def test_incremental_run_refreshes_metrics_in_the_lookback_window_in_batches(simulator, harness):
    run(harness)
    times = sorted((row["create_time"] for row in videos(harness).values()), reverse=True)
    oldest_in_window = times[24]  # the newest 25 videos
    lookback = int((datetime.now(UTC).timestamp() - oldest_in_window) // DAY_S) + 1
    in_window = sum(1 for t in times if t >= datetime.now(UTC).timestamp() - lookback * DAY_S)
    meta = metadata(run(harness, lookback_days=lookback), "tiktok_videos")
    refreshed = in_window - 1  # the newest one was just listed: it is not queried again
    assert meta["videos_refreshed"] == refreshed
    assert meta["api_requests_by_endpoint"] == f"video_list=1, video_query={-(-refreshed // 20)}"
    assert meta["dagster/row_count"] == 1 + refreshed


def test_a_video_deleted_inside_the_lookback_window_is_marked_not_removed(simulator, harness):
    run(harness)
    gone = simulator.video_ids(0, 3, 4)[0]
    simulator.delete_video(0, gone)
    meta = metadata(run(harness, lookback_days=3650), "tiktok_videos")
    assert meta["videos_marked_deleted"] == 1
    rows = videos(harness)
    assert rows[gone]["deleted_at"] is not None  # the row and its history stay
    assert sum(row["deleted_at"] is None for row in rows.values()) == len(rows) - 1
    assert harness.warehouse.count("tiktok_video_metrics_daily", video_id=gone) == 1


def test_full_run_marks_vanished_videos_and_a_video_seen_again_is_live_again(simulator, harness):
    run(harness)
    gone = simulator.video_ids(0, 40, 41)[0]  # old: far outside any lookback window
    simulator.delete_video(0, gone)
    assert metadata(run(harness), "tiktok_videos")["videos_marked_deleted"] == 0  # incremental
    meta = metadata(run(harness, mode="full"), "tiktok_videos")
    assert meta["sync_mode"] == "full" and meta["videos_marked_deleted"] == 1
    assert meta["videos_listed"] == simulator.accounts[0].video_count
    assert videos(harness)[gone]["deleted_at"] is not None
    assert metadata(run(harness, mode="full"), "tiktok_videos")["videos_marked_deleted"] == 0
    # Changing a data knob and back rebuilds the same catalog without the deletion.
    simulator.set(videos_per_account=46)
    simulator.set(videos_per_account=45)
    run(harness, mode="full")
    assert videos(harness)[gone]["deleted_at"] is None
    assert len(videos(harness)) == 45


def test_videos_are_written_in_chunks_without_losing_any(simulator, harness, monkeypatch):
    monkeypatch.setattr(video_sync, "CHUNK_VIDEOS", 7)
    meta = metadata(run(harness, mode="full"), "tiktok_videos")
    assert meta["videos_listed"] == len(videos(harness)) == 45
    assert harness.warehouse.count("tiktok_video_metrics_daily") == 45


@pytest.mark.parametrize(
    ("config", "complaint"),
    [({"mode": "sometimes"}, "mode"), ({"lookback_days": -1}, "lookback_days")],
)
def test_bad_sync_config_is_refused_before_anything_runs(simulator, harness, config, complaint):
    harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, ["creator-a"])
    with pytest.raises(Exception, match=complaint):
        dg.materialize(
            harness.assets,
            selection=["tiktok_videos"],
            partition_key="creator-a",
            resources=harness.resources,
            instance=harness.instance,
            run_config=sync_config(**config),
        )
    assert simulator.stats()["video_list"]["requests"] == 0


def test_the_lookback_refresh_reads_stored_ids_page_by_page(simulator, harness, monkeypatch):
    run(harness)
    # Pages of 4 ids: the 44 stored videos not listed again cross 11 pages of the keyset query.
    monkeypatch.setattr(tiktok_videos, "ID_CHUNK", 4)
    second = run(harness, lookback_days=3650)
    meta = metadata(second, "tiktok_videos")
    assert meta["videos_listed"] == 1  # the newest one, re-read at the watermark
    assert meta["videos_refreshed"] == 44
    assert meta["api_requests_by_endpoint"] == "video_list=1, video_query=3"
    # Every stored video was written by this run, each exactly once.
    assert {row["_load_id"] for row in videos(harness).values()} == {second.run_id}

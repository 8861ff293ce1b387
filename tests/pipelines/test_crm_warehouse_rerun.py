"""Rerunning partitions on SQLite and PostgreSQL: TikTok -> assets -> every warehouse table, twice.

Two connections are synced, then each partition is run again the same day. Every table (profiles,
videos, both daily snapshot tables, both CRM tables) keeps its row count, and the rerun's run id is
on every row it rewrote (all rows of the profile and CRM tables, the recently posted videos of the
incremental video sync): rewritten in place, never duplicated.
"""

import pytest

from tests.pipelines.helpers import Harness, connect, failure_description, use_live_app

TABLES = (
    "tiktok_profiles",
    "tiktok_videos",
    "tiktok_profile_stats_daily",
    "tiktok_video_metrics_daily",
    "crm_contacts",
    "crm_videos",
)
# The incremental video sync (the default) re-reads recent videos only: older rows keep their id.
INCREMENTAL = ("tiktok_videos", "tiktok_video_metrics_daily")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def harness(request, simulator, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    use_live_app(simulator)
    return Harness(simulator, tmp_path, warehouse_url=url)


def test_rerunning_partitions_never_duplicates_a_row(simulator, harness):
    for name, account in (("creator-a", 0), ("creator-b", 1)):
        connect(simulator, harness.store, name, account=account)
        assert harness.sync(name).success
    wh = harness.warehouse
    counts = {table: wh.count(table) for table in TABLES}
    videos = sum(simulator.accounts[i].video_count for i in (0, 1))
    assert counts == {
        "tiktok_profiles": 2,
        "tiktok_videos": videos,
        "tiktok_profile_stats_daily": 2,
        "tiktok_video_metrics_daily": videos,
        "crm_contacts": 2,
        "crm_videos": videos,
    }

    rerun = harness.sync("creator-a")
    assert rerun.success, failure_description(rerun)
    assert harness.sync("creator-b").success
    assert {table: wh.count(table) for table in TABLES} == counts
    for table in TABLES:
        load_ids = {row["_load_id"] for row in wh.rows(table, connection_name="creator-a")}
        if table in INCREMENTAL:
            assert rerun.run_id in load_ids and len(load_ids) <= 2, table
        else:
            assert load_ids == {rerun.run_id}, table

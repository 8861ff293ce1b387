"""Follower growth across two simulated days: simulator clock -> sync -> snapshots -> crm tables.

The simulator's profile stats and video metrics grow with its injectable clock. The extraction
assets date their daily snapshots with `datetime.now`, which this test points at the same clock, so
two syncs a day apart leave two snapshots, and the CRM assets compute `follower_growth` and
`views_since_last_sync` from the previous one. Runs on SQLite and PostgreSQL.
"""

from datetime import date, datetime

import pytest

from simulators.tiktok import ManualClock, SimulatorConfig, TikTokSimulator
from tests.pipelines.helpers import (
    Harness,
    connect,
    failure_description,
    metadata,
    sync_on_simulated_clock,
    use_live_app,
)

DAY_S = 86_400
NO_STATS = ["user.info.basic", "user.info.profile", "video.list"]


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def simulator(clock):
    sim = TikTokSimulator(SimulatorConfig(seed=7, accounts=2, videos_per_account=25, clock=clock))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def snapshots_follow_the_simulated_clock(monkeypatch, clock):
    sync_on_simulated_clock(monkeypatch, clock)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def harness(request, simulator, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path, warehouse_url=url)
    # Entering the instance makes it Dagster's current defs-state storage for the whole test
    # (see tests/pipelines/test_extraction_faults.py).
    with harness.instance:
        yield harness


def sync(harness: Harness, name: str):
    result = harness.sync(name)
    assert result.success, failure_description(result)
    return result


def metrics_by_video(harness: Harness, day: date) -> dict[str, int]:
    rows = harness.warehouse.rows("tiktok_video_metrics_daily", snapshot_date=day)
    return {row["video_id"]: row["view_count"] for row in rows}


def test_follower_growth_from_the_second_day_on(simulator, clock, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    wh, account = harness.warehouse, simulator.accounts[0]
    day_one = datetime.fromtimestamp(clock()).date()

    first = sync(harness, "creator-a")
    assert wh.rows("crm_contacts")[0]["follower_growth"] is None  # no earlier snapshot yet
    assert metadata(first, "crm_contacts")["previous_snapshot"] == "none"

    clock.advance(DAY_S)
    second = sync(harness, "creator-a")
    stats = {row["snapshot_date"]: row for row in wh.rows("tiktok_profile_stats_daily")}
    assert sorted(stats) == [day_one, date.fromordinal(day_one.toordinal() + 1)]
    growth = stats[max(stats)]["follower_count"] - stats[day_one]["follower_count"]
    assert growth == account.follower_daily_growth > 0
    assert wh.rows("crm_contacts")[0]["follower_growth"] == growth
    assert metadata(second, "crm_contacts")["previous_snapshot"] == str(day_one)

    # The incremental sync re-reads recent videos only: the others have no new snapshot, so
    # their views since the last sync are unknown (null), not 0.
    before, after = metrics_by_video(harness, day_one), metrics_by_video(harness, max(stats))
    views = {row["tiktok_video_id"]: row["views_since_last_sync"] for row in wh.rows("crm_videos")}
    assert views == {
        video: after[video] - before[video] if video in after else None for video in before
    }
    assert after and all(views[video] > 0 for video in after)

    # A rerun on day two still compares with day one: growth is not reset to 0.
    counts = {t: wh.count(t) for t in ("tiktok_profile_stats_daily", "crm_contacts", "crm_videos")}
    sync(harness, "creator-a")
    assert wh.rows("crm_contacts")[0]["follower_growth"] == growth
    assert {t: wh.count(t) for t in counts} == counts


def test_growth_stays_empty_without_the_stats_scope(simulator, clock, harness):
    connect(simulator, harness.store, "no-stats", account=1, scopes=NO_STATS)
    sync(harness, "no-stats")
    clock.advance(DAY_S)
    result = sync(harness, "no-stats")
    contact = harness.warehouse.rows("crm_contacts")[0]
    assert (contact["followers"], contact["follower_growth"]) == (None, None)
    assert "follower_growth" in metadata(result, "crm_contacts")["fields_left_empty_by_scope"]

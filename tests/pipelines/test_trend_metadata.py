"""What the UI shows per connection: the snapshot tables as assets, and the metadata shapes.

The pure shapes first (the trend chart and table, the call counters folded into one table, a
timestamp shown as one), then one round trip: the simulator's account synced on two simulated
days through the real multi-asset (Harness), its snapshot materializations read back.
"""

import base64
import re
from datetime import date

import dagster as dg
import pytest

from pipelines.defs.batch import CALL_COUNTERS, CALLS_KEY, dagster_metadata
from pipelines.defs.sync.assets import SYNC_GROUP
from resources.tiktok.call_stats import CallStats
from resources.warehouse import tiktok_tables as tables
from services.outcome import Markdown, Timestamp
from services.profile import stats_metadata
from services.trend import TABLE_DAYS, TREND_DAYS, trend_markdown, trend_rows
from tests.pipelines.helpers import Harness, connect, materializations, use_live_app

SNAPSHOTS = (tables.PROFILE_STATS_DAILY, tables.VIDEO_METRICS_DAILY)


def snapshot(day: int, followers: int | None = 1000, likes: int = 50, videos: int = 3) -> dict:
    """A `tiktok_profile_stats_daily` row, as `Warehouse.rows` returns it."""
    return {
        "connection_name": "creator-a",
        "snapshot_date": date(2026, 5, day),
        "open_id": "open-a",
        "follower_count": followers,
        "following_count": 12,
        "likes_count": likes,
        "video_count": videos,
    }


def svg_of(markdown: str) -> str:
    [encoded] = re.findall(r"\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    return base64.b64decode(encoded).decode()


def test_trend_rows_are_the_last_days_oldest_first():
    rows = [snapshot(day) for day in (9, 1, 5)] + [snapshot(day) for day in range(10, 31)]
    picked = trend_rows(rows, days=3)
    assert [row["snapshot_date"].day for row in picked] == [28, 29, 30]
    assert len(trend_rows(rows)) == min(TREND_DAYS, len(rows))


def test_the_trend_charts_each_count_on_its_own_scale_and_lists_the_last_days():
    rows = [snapshot(day, followers=1000 + 10 * day, likes=50 + day) for day in range(1, 11)]
    text = trend_markdown(rows)
    svg = svg_of(text)
    # One line per count; each panel labels its own low and high, so 3 videos are not flattened.
    assert svg.count("<polyline") == 3
    assert ">1,100<" in svg and ">1,010<" in svg and "+90 in 10 days" in svg
    table = [line for line in text.splitlines() if line.startswith("| 2026")]
    assert len(table) == TABLE_DAYS
    assert table[0] == "| 2026-05-10 | 1,100 | 60 | 3 |"  # newest first


def test_a_count_never_granted_is_said_not_drawn():
    text = trend_markdown([snapshot(1, followers=None), snapshot(2, followers=None)])
    assert svg_of(text).count("<polyline") == 2 and "not granted" in svg_of(text)
    assert "| 2026-05-02 | n/a | 50 | 3 |" in text


def test_no_snapshot_yet_is_a_sentence():
    assert trend_markdown([]) == "no daily snapshot stored yet"


def test_snapshot_metadata_plots_the_counts_and_carries_the_trend():
    history = [snapshot(1), snapshot(2, followers=1010)]
    meta = dagster_metadata(stats_metadata("creator-a", history[-1], history))
    for count in ("follower_count", "likes_count", "video_count"):
        assert isinstance(meta[count], int)  # Dagster plots plain numbers
    assert meta["follower_count"] == 1010 and meta["dagster/row_count"] == 1
    assert isinstance(meta["trend"], dg.MarkdownMetadataValue)
    assert "following_count" not in meta  # the creator's choice, not their audience


def test_call_counters_become_one_table_and_leave_no_flat_plot():
    stats = CallStats()
    stats.count_request("user_info")
    meta = dagster_metadata({"connection": "creator-a", "follower_count": 5, **stats.as_metadata()})
    assert set(meta) == {"connection", "follower_count", CALLS_KEY}
    calls = meta[CALLS_KEY]
    assert isinstance(calls, dg.JsonMetadataValue)
    assert calls.value["api_requests"] == 1 and set(calls.value) == CALL_COUNTERS


def test_a_timestamp_is_shown_as_one():
    meta = dagster_metadata({"last_synced_at": Timestamp(1_780_000_000.5), "note": Markdown("x")})
    assert meta["last_synced_at"] == dg.MetadataValue.timestamp(1_780_000_000.5)
    assert isinstance(meta["note"], dg.MarkdownMetadataValue)


def test_the_snapshot_tables_are_assets_downstream_of_their_source_in_one_group(harness):
    [sync] = harness.assets
    specs = {spec.key.to_user_string(): spec for spec in sync.specs}
    deps = {name: {d.asset_key.to_user_string() for d in specs[name].deps} for name in SNAPSHOTS}
    assert deps == {SNAPSHOTS[0]: {"tiktok_profile"}, SNAPSHOTS[1]: {"tiktok_videos"}}
    # One group: Dagster's lineage shows a lone group's assets instead of a collapsed box.
    assert {spec.group_name for spec in sync.specs} == {SYNC_GROUP}
    for name, columns in zip(
        SNAPSHOTS, (tables.PROFILE_STATS_COLUMNS, tables.VIDEO_METRICS_COLUMNS), strict=True
    ):
        schema = specs[name].metadata["dagster/column_schema"]
        assert [column.name for column in schema.columns] == [name for name, _ in columns]


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    connect(simulator, harness.store, "creator-a", account=0)
    with harness.instance:
        yield harness


def test_two_days_of_sync_chart_the_connection_and_count_its_rows(harness):
    for day in ("2026-05-01", "2026-05-02"):
        result = harness.sync("creator-a", config={"sync_date": day})
        assert result.success
    [stats] = materializations(result, tables.PROFILE_STATS_DAILY)
    [metrics] = materializations(result, tables.VIDEO_METRICS_DAILY)
    [profile] = materializations(result, "tiktok_profile")
    assert stats.partition == metrics.partition == "creator-a"
    trend = stats.metadata["trend"].value
    assert "| 2026-05-02 |" in trend and "| 2026-05-01 |" in trend and "in 2 days" in svg_of(trend)
    assert isinstance(stats.metadata["follower_count"], dg.IntMetadataValue)
    stored = harness.warehouse.rows(
        tables.VIDEO_METRICS_DAILY, connection_name="creator-a", snapshot_date=date(2026, 5, 2)
    )
    assert metrics.metadata["dagster/row_count"].value == len(stored) > 0
    # The profile's numbers are its counts; its calls are one table, not a dozen flat plots.
    plotted = {key for key, value in profile.metadata.items() if isinstance(value.value, int)}
    assert not plotted & CALL_COUNTERS
    assert profile.metadata[CALLS_KEY].value["api_requests"] >= 1


def test_the_profile_snapshot_alone_syncs_and_reports_it(harness):
    result = harness.sync("creator-a", selection=[tables.PROFILE_STATS_DAILY])
    assert result.success
    [stats] = materializations(result, tables.PROFILE_STATS_DAILY)
    assert stats.metadata["snapshot_date"].value
    assert materializations(result, tables.VIDEO_METRICS_DAILY) == []
    # The profile row is written from the same answer in the same transaction: reported too.
    assert len(materializations(result, "tiktok_profile")) == 1

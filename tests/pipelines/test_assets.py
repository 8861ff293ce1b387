"""Assets end to end against the simulator: TikTok -> assets -> mapping -> warehouse (SQLite, PG).

Each test connects simulated accounts through the real OAuth code exchange, materializes one
connection's partition with `dg.materialize`, and reads the warehouse tables back.
"""

import pytest

from tests.pipelines.helpers import (
    Harness,
    connect,
    failure_description,
    metadata,
    use_live_app,
)


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    return Harness(simulator, tmp_path)


def test_one_partition_fills_every_table(simulator, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    result = harness.sync("creator-a")
    assert result.success, failure_description(result)
    account = simulator.accounts[0]
    wh = harness.warehouse
    assert wh.count("tiktok_profiles") == 1
    assert wh.count("tiktok_videos") == account.video_count > 0
    assert wh.count("crm_contacts") == 1
    assert wh.count("crm_videos") == account.video_count
    assert wh.count("tiktok_profile_stats_daily") == 1
    profile = wh.rows("tiktok_profiles")[0]
    assert profile["display_name"] == account.display_name
    assert profile["follower_count"] is not None and profile["missing_scopes"] is None
    assert all(len(row["id"]) == 19 for row in wh.rows("tiktok_videos"))
    meta = metadata(result, "tiktok_videos")
    assert meta["dagster/row_count"] == account.video_count
    assert meta["api_requests"] >= account.video_count // 20
    assert meta["mode"] == "live"


def test_rerunning_a_partition_never_duplicates_rows(simulator, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    harness.sync("creator-a")
    counts = {
        t: harness.warehouse.count(t) for t in ("tiktok_videos", "crm_videos", "crm_contacts")
    }
    assert harness.sync("creator-a").success
    assert {t: harness.warehouse.count(t) for t in counts} == counts


def test_missing_stats_scope_leaves_columns_empty_with_the_reason(simulator, harness):
    connect(
        simulator,
        harness.store,
        "no-stats",
        1,
        ["user.info.basic", "user.info.profile", "video.list"],
    )
    result = harness.sync("no-stats")
    assert result.success, failure_description(result)
    profile = harness.warehouse.rows("tiktok_profiles")[0]
    assert profile["follower_count"] is None
    assert profile["missing_scopes"] == "user.info.stats"
    assert metadata(result, "tiktok_profile")["missing_scopes"] == "user.info.stats"


def test_missing_video_scope_skips_videos_without_failing(simulator, harness):
    connect(simulator, harness.store, "no-videos", 0, ["user.info.basic"])
    result = harness.sync("no-videos")
    assert result.success, failure_description(result)
    assert harness.warehouse.count("tiktok_videos") == 0
    assert "video.list" in metadata(result, "tiktok_videos")["skipped_reason"]


def test_token_expiring_mid_pagination_is_refreshed_and_the_page_resumed(simulator, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    simulator.inject("video_list", "token_expired", 1)
    result = harness.sync("creator-a")
    assert result.success, failure_description(result)
    assert metadata(result, "tiktok_videos")["token_refreshes"] == 1
    assert harness.warehouse.count("tiktok_videos") == simulator.accounts[0].video_count


def test_rate_limited_answers_are_retried_and_reported(simulator, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    simulator.inject("video_list", "rate_limited", 2)
    result = harness.sync("creator-a")
    assert result.success, failure_description(result)
    meta = metadata(result, "tiktok_videos")
    assert (meta["api_rate_limited"], meta["api_retries"]) == (2, 2)


def test_revoked_connection_fails_alone_with_the_fix(simulator, harness):
    connect(simulator, harness.store, "revoked", account=0)
    connect(simulator, harness.store, "healthy", account=1)
    simulator.revoke_account(0)
    failed = harness.sync("revoked")
    assert not failed.success
    assert "tiktok-crm-sync connections reconnect revoked" in failure_description(failed)
    assert harness.store.get("revoked").status == "needs_reconnect"
    assert harness.sync("healthy").success
    assert harness.store.get("healthy").status == "active"


def test_live_runs_refuse_demo_connections(simulator, harness):
    connect(simulator, harness.store, "demo-01", account=0, app="demo")
    result = harness.sync("demo-01")
    assert not result.success
    assert "demo app" in failure_description(result)
    assert not harness.warehouse.has_table("tiktok_profiles")


def test_demo_mode_refuses_live_credentials(simulator, tmp_path):
    harness = Harness(simulator, tmp_path, mode="demo")
    connect(simulator, harness.store, "demo-01", account=0, app="demo")
    use_live_app(simulator)  # credentials appear in the environment
    result = harness.sync("demo-01")
    assert "TIKTOK_CLIENT_KEY" in failure_description(result)


def test_demo_mode_labels_its_metadata(simulator, tmp_path):
    harness = Harness(simulator, tmp_path, mode="demo")
    connect(simulator, harness.store, "demo-01", account=0, app="demo")
    result = harness.sync("demo-01")
    assert result.success, failure_description(result)
    assert "DEMO" in metadata(result, "tiktok_profile")["mode"]


@pytest.mark.postgres
def test_loads_into_postgresql(simulator, tmp_path, postgres_url):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path, warehouse_url=postgres_url)
    connect(simulator, harness.store, "creator-a", account=0)
    assert harness.sync("creator-a").success
    assert harness.sync("creator-a").success
    assert harness.warehouse.count("crm_videos") == simulator.accounts[0].video_count

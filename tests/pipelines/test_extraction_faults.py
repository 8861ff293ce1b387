"""Fault injection, one test per error class: simulator fault -> client -> asset -> warehouse.

Each test connects simulated accounts through the real OAuth code exchange, injects a fault into
the simulator (or revokes, expires, withdraws), materializes one connection's partition and checks
the outcome a user sees: the rows (complete, or none at all), the asset's metadata (requests, 429s,
retries, seconds waited) or the failure's metadata (error kind, retry policy, what to do).
Backoff sleeps are zero (`backoff_cap_s=0`) and the budget is generous, so nothing sleeps for real.
"""

from __future__ import annotations

import os

import dagster as dg
import pytest

from resources.configurable import TikTokResource
from resources.tiktok.oauth import TokenGrant
from tests.pipelines.helpers import Harness, connect, failure_description, metadata, use_live_app

GENEROUS_LIMITS = "user_info=60000,video_list=60000,video_query=60000"


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


def run(harness: Harness, name: str = "creator-a", **config) -> dg.ExecuteInProcessResult:
    return harness.sync(name, selection=["tiktok_profile", "tiktok_videos"], config=config)


def failure_metadata(result: dg.ExecuteInProcessResult) -> dict:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.user_failure_data:
            found = event.step_failure_data.user_failure_data.metadata
            return {key: value.value for key, value in found.items()}
    raise AssertionError("no step failed with metadata")


def stored_videos(harness: Harness) -> int:
    if not harness.warehouse.has_table("tiktok_videos"):
        return 0
    return harness.warehouse.count("tiktok_videos", connection_name="creator-a")


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("video_list", "rate_limited"),  # 429 rate_limit_exceeded, no Retry-After
        ("video_list", "server_error"),  # 500 internal_error
        ("video_list", "bad_gateway"),  # 502 with an HTML body
        ("video_list", "connection_reset"),  # TCP reset, no answer at all
        ("user_info", "server_error"),
    ],
)
def test_retryable_faults_are_retried_and_every_video_arrives(simulator, harness, endpoint, fault):
    simulator.inject(endpoint, fault, 2)
    result = run(harness)
    assert result.success, failure_description(result)
    assert stored_videos(harness) == simulator.accounts[0].video_count
    asset = "tiktok_videos" if endpoint == "video_list" else "tiktok_profile"
    meta = metadata(result, asset)
    assert meta["api_retries"] == 2
    assert meta["api_rate_limited"] == (2 if fault == "rate_limited" else 0)
    assert meta["api_requests"] == meta["api_retries"] + (3 if endpoint == "video_list" else 1)
    assert meta["seconds_waited"] >= 0 and "seconds_waited_for_budget" in meta


def test_a_request_that_times_out_is_retried(simulator, harness):
    simulator.set(timeout_fault_seconds=2.0)
    harness.resources["tiktok"] = TikTokResource(
        api_base_url=simulator.base_url, backoff_cap_s=0.0, request_timeout_s=0.3
    )
    simulator.inject("video_list", "timeout", 1)
    result = run(harness)
    assert result.success, failure_description(result)
    assert metadata(result, "tiktok_videos")["api_retries"] == 1
    assert stored_videos(harness) == simulator.accounts[0].video_count


def test_an_error_body_without_a_data_key_is_classified_the_same(simulator, harness):
    simulator.set(error_data_key="absent")  # tiktok-api.md 12.5: either shape is tolerated
    simulator.inject("video_list", "rate_limited", 1)
    result = run(harness)
    assert result.success, failure_description(result)
    assert metadata(result, "tiktok_videos")["api_rate_limited"] == 1


# 429s no longer open the circuit: they are retried past TikTok's window, and the budget learns
# the limit (issue 13; tests/resources/test_adaptive_extraction.py).
@pytest.mark.parametrize(("fault", "kind"), [("server_error", "transient")])
def test_an_endpoint_that_keeps_failing_opens_the_circuit_and_fails_alone(
    simulator, harness, fault, kind
):
    connect(simulator, harness.store, "creator-b", account=1)
    simulator.inject("video_list", fault, 5)  # the breaker's threshold: then it stops calling
    result = run(harness)
    assert not result.success
    meta = failure_metadata(result)
    assert meta["error_kind"] == kind and meta["circuit_opened"] == 1
    assert meta["api_requests"] == 5  # the breaker stopped the sixth attempt
    assert "re-run" in meta["what_to_do"] and "circuit open" in failure_description(result)
    assert stored_videos(harness) == 0  # nothing half-written
    assert run(harness, "creator-b").success  # another connection's client has its own circuit


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ("missing_envelope", "no `error` envelope"),
        ("wrong_types", "data."),  # names the mistyped field
    ],
)
def test_contract_violations_fail_with_the_field_and_store_nothing(
    simulator, harness, fault, field
):
    simulator.inject("video_list", fault, 1)
    result = run(harness)
    assert not result.success
    meta = failure_metadata(result)
    assert meta["error_kind"] == "contract_violation"
    assert meta["api_retries"] == 0  # a broken contract is not retried
    assert field in failure_description(result)
    assert "log id" in meta["what_to_do"]
    assert stored_videos(harness) == 0


@pytest.mark.parametrize("fault", ["truncated_json", "malformed_json"])
def test_an_answer_cut_or_garbled_on_the_way_is_retried_and_the_connection_completes(
    simulator, harness, fault
):
    simulator.inject("video_list", fault, 1)
    result = run(harness)
    assert result.success, failure_description(result)
    assert metadata(result, "tiktok_videos")["api_retries"] == 1
    assert stored_videos(harness) == simulator.accounts[0].video_count


def test_a_token_rejected_mid_run_is_refreshed_once_and_the_page_resumed(simulator, harness):
    simulator.expire_access_tokens(0)  # TikTok rejects a token our database still trusts
    result = run(harness)
    assert result.success, failure_description(result)
    assert metadata(result, "tiktok_profile")["token_refreshes"] == 1
    assert stored_videos(harness) == simulator.accounts[0].video_count


def test_needs_reconnect_fails_that_partition_without_calling_tiktok_again(simulator, harness):
    connect(simulator, harness.store, "creator-b", account=1)
    simulator.revoke_account(0)
    first = run(harness)
    assert not first.success
    meta = failure_metadata(first)
    assert meta["error_kind"] == "needs_reconnect"
    assert "tiktok-crm-sync connections reconnect creator-a" in failure_description(first)
    assert harness.store.get("creator-a").status == "needs_reconnect"
    calls = simulator.stats()["oauth_token"]["requests"]
    again = run(harness)
    assert not again.success and "reconnect creator-a" in failure_description(again)
    assert simulator.stats()["oauth_token"]["requests"] == calls  # the dead token is not retried
    assert run(harness, "creator-b").success


def _pretend_granted(harness: Harness, name: str, scopes: set[str]) -> None:
    """The state database believes in scopes that TikTok's grant does not hold (withdrawn)."""
    stored = harness.store.get(name)
    grant = TokenGrant(
        open_id=stored.open_id,
        scopes=frozenset(scopes),
        expires_in=86_400,
        refresh_expires_in=86_400,
        issued_at=stored.access_expires_at - 86_400,
        access_token=stored.access_token,
        refresh_token=stored.refresh_token,
    )
    harness.store.save_grant(name, stored.app, grant)


def test_a_scope_tiktok_refuses_leaves_columns_empty_with_the_reason(simulator, harness):
    connect(simulator, harness.store, "basic-only", 1, ["user.info.basic"])
    all_scopes = {"user.info.basic", "user.info.profile", "user.info.stats", "video.list"}
    _pretend_granted(harness, "basic-only", all_scopes)
    result = run(harness, "basic-only")
    assert result.success, failure_description(result)
    profile = harness.warehouse.rows("tiktok_profiles", connection_name="basic-only")[0]
    assert profile["display_name"] and profile["follower_count"] is None
    assert "user.info.stats" in profile["missing_scopes"]
    assert "scope_permission_missed" in metadata(result, "tiktok_profile")["missing_scopes_reason"]
    assert "video.list" in metadata(result, "tiktok_videos")["skipped_reason"]


def test_wrong_app_credentials_are_a_permanent_failure_with_the_fix(simulator, harness):
    simulator.expire_access_tokens(0)
    os.environ["TIKTOK_CLIENT_SECRET"] = "not-the-secret"
    result = run(harness)
    assert not result.success
    meta = failure_metadata(result)
    assert meta["error_kind"] == "permanent" and meta["tiktok_error_code"] == "invalid_client"
    assert "client key and secret" in failure_description(result)
    assert "not-the-secret" not in str(meta) + failure_description(result)
    assert harness.store.get("creator-a").status == "active"  # not the user's fault


@pytest.mark.parametrize(
    ("fault", "count"),
    [
        ("cursor_loop", 1),  # one repeated cursor: the page is asked again
        ("duplicate_items", 2),  # videos repeated across pages
        ("empty_page_has_more", 2),  # empty pages that still claim has_more
        ("short_page", 2),  # fewer than max_count with has_more
    ],
)
def test_paging_faults_still_store_every_video_exactly_once(simulator, harness, fault, count):
    simulator.inject("video_list", fault, count)
    result = run(harness)
    assert result.success, failure_description(result)
    meta = metadata(result, "tiktok_videos")
    assert meta["stop_reason"] == "has_more_false"
    assert meta["videos_listed"] == stored_videos(harness) == simulator.accounts[0].video_count
    if fault == "duplicate_items":
        assert meta["duplicates_dropped"] >= 1
    if fault == "cursor_loop":
        assert meta["pages_repeated"] == 1


def test_a_cursor_that_keeps_looping_fails_and_stores_no_gap(simulator, harness):
    simulator.inject("video_list", "cursor_loop", 5)
    result = run(harness)
    assert not result.success
    meta = failure_metadata(result)
    assert meta["error_kind"] == "contract_violation"
    assert meta["tiktok_error_code"] in ("cursor_exhausted", "cursor_not_advancing")
    assert "nothing from this run was stored" in failure_description(result)
    assert stored_videos(harness) == 0

"""Round trip: sim.inject(endpoint, fault) -> the next real HTTP call misbehaves as described.

Every name in FAULTS has a check here (a new fault without one fails the suite); each check also
shows that the call after the faulted one is back to normal.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from simulators.tiktok import FAULTS
from tests.simulators.conftest import StartSim
from tests.simulators.harness import Harness


def not_json(response: httpx.Response) -> bool:
    try:
        json.loads(response.content)
    except ValueError:
        return True
    return False


def check_rate_limited(harness: Harness, token: str) -> None:
    response = harness.user_info(token, "open_id")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert "retry-after" not in response.headers


def check_server_error(harness: Harness, token: str) -> None:
    response = harness.video_list(token)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["data"] == {}


def check_bad_gateway(harness: Harness, token: str) -> None:
    response = harness.user_info(token, "open_id")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert not_json(response)


def check_timeout(harness: Harness, token: str) -> None:
    harness.sim.set(timeout_fault_seconds=0.5)
    with (
        httpx.Client(base_url=str(harness.client.base_url), timeout=0.05) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.get("/v2/user/info/", params={"fields": "open_id"}, headers=auth(token))


def check_connection_reset(harness: Harness, token: str) -> None:
    with pytest.raises(httpx.TransportError):
        harness.user_info(token, "open_id")


def check_truncated_json(harness: Harness, token: str) -> None:
    response = harness.user_info(token, "open_id,display_name")
    assert response.status_code == 200 and not_json(response)
    assert response.content.startswith(b'{"data":{"user":')
    assert int(response.headers["content-length"]) == len(response.content)


def check_malformed_json(harness: Harness, token: str) -> None:
    response = harness.video_query(token, [])
    assert response.status_code == 200 and not_json(response)


def check_missing_envelope(harness: Harness, token: str) -> None:
    body = harness.user_info(token, "open_id").json()
    assert "error" not in body and "open_id" in body["data"]["user"]


def check_wrong_types(harness: Harness, token: str) -> None:
    user = harness.user_info(token, "follower_count,is_verified").json()["data"]["user"]
    assert isinstance(user["follower_count"], str) and user["is_verified"] in {"yes", "no"}


def check_token_expired(harness: Harness, token: str) -> None:
    response = harness.video_list(token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "access_token_invalid"


def check_cursor_loop(harness: Harness, token: str) -> None:
    data = harness.video_list(token, {"cursor": 1_766_000_000_000}).json()["data"]
    assert data["cursor"] == 1_766_000_000_000 and data["has_more"] is True


def check_duplicate_items(harness: Harness, token: str) -> None:
    first = harness.video_list(token, {"max_count": 6}).json()["data"]
    harness.sim.inject("video_list", "duplicate_items")
    second = harness.video_list(token, {"max_count": 6, "cursor": first["cursor"]}).json()["data"]
    repeated = {v["id"] for v in first["videos"]} & {v["id"] for v in second["videos"]}
    assert repeated and second["has_more"] is True


def check_empty_page_has_more(harness: Harness, token: str) -> None:
    data = harness.video_list(token, {"cursor": 1_766_000_000_000}).json()["data"]
    assert data["videos"] == [] and data["has_more"] is True
    assert data["cursor"] < 1_766_000_000_000


def check_short_page(harness: Harness, token: str) -> None:
    data = harness.video_list(token, {"max_count": 10}).json()["data"]
    assert 0 < len(data["videos"]) < 10 and data["has_more"] is True


FAULT_CHECKS: dict[str, tuple[str, Callable[[Harness, str], None]]] = {
    "rate_limited": ("user_info", check_rate_limited),
    "server_error": ("video_list", check_server_error),
    "bad_gateway": ("user_info", check_bad_gateway),
    "timeout": ("user_info", check_timeout),
    "connection_reset": ("user_info", check_connection_reset),
    "truncated_json": ("user_info", check_truncated_json),
    "malformed_json": ("video_query", check_malformed_json),
    "missing_envelope": ("user_info", check_missing_envelope),
    "wrong_types": ("user_info", check_wrong_types),
    "token_expired": ("video_list", check_token_expired),
    "cursor_loop": ("video_list", check_cursor_loop),
    "duplicate_items": ("video_list", check_duplicate_items),
    "empty_page_has_more": ("video_list", check_empty_page_has_more),
    "short_page": ("video_list", check_short_page),
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_fault_has_a_check() -> None:
    assert set(FAULT_CHECKS) == FAULTS


@pytest.mark.parametrize("fault", sorted(FAULT_CHECKS))
def test_fault_then_recovery(harness: Harness, fault: str) -> None:
    endpoint, check = FAULT_CHECKS[fault]
    token = harness.access_token()
    if fault != "duplicate_items":  # that check injects between its two pages
        harness.sim.inject(endpoint, fault)
    check(harness, token)
    assert harness.user_info(token, "open_id").json()["error"]["code"] == "ok"
    assert harness.video_list(token, {"max_count": 1}).json()["error"]["code"] == "ok"


def test_count_repeats_the_fault(harness: Harness) -> None:
    token = harness.access_token()
    harness.sim.inject("user_info", "server_error", count=2)
    codes = [harness.user_info(token, "open_id").status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert harness.sim.stats()["user_info"]["errors"] == 2


@pytest.mark.parametrize("fault", ["short_page", "empty_page_has_more", "duplicate_items"])
def test_paging_faults_do_not_lose_videos(harness: Harness, fault: str) -> None:
    token = harness.access_token()
    harness.sim.inject("video_list", fault, count=3)
    ids = [video["id"] for video in harness.walk(token, max_count=6)]
    assert set(ids) == set(harness.sim.video_ids(0))


def test_wrong_types_on_list_query_and_token(harness: Harness) -> None:
    token = harness.access_token()
    harness.sim.inject("video_list", "wrong_types")
    listed = harness.video_list(token, {"max_count": 2}).json()["data"]
    assert listed["has_more"] == "yes" and isinstance(listed["cursor"], str)
    assert isinstance(listed["videos"][0]["create_time"], str)
    harness.sim.inject("video_query", "wrong_types")
    queried = harness.video_query(token, harness.sim.video_ids(0, 0, 2)).json()["data"]
    assert isinstance(queried["videos"], str)
    harness.sim.inject("oauth_token", "wrong_types")
    login = harness.login()
    assert login["expires_in"] == "86400"


def test_oauth_endpoints_fail_in_the_oauth_shape(harness: Harness) -> None:
    login = harness.login()
    harness.sim.inject("oauth_token", "server_error")
    failed = harness.refresh(login["refresh_token"])
    assert failed.status_code == 500 and failed.json()["error"] == "server_error"
    harness.sim.inject("oauth_token", "rate_limited")
    limited = harness.refresh(login["refresh_token"])
    assert limited.status_code == 429 and limited.json()["error"] == "temporarily_unavailable"
    # The failed calls did not rotate anything: the refresh token still works.
    assert harness.refresh(login["refresh_token"]).status_code == 200
    harness.sim.inject("authorize", "bad_gateway")
    assert harness.authorize_page().status_code == 502


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("profile", "server_error"),  # unknown endpoint
        ("user_info", "meteor_strike"),  # unknown fault
        ("user_info", "cursor_loop"),  # paging faults are for video_list only
        ("authorize", "truncated_json"),  # the consent page answers with a redirect
        ("oauth_revoke", "wrong_types"),
    ],
)
def test_inject_rejects_meaningless_faults(harness: Harness, endpoint: str, fault: str) -> None:
    with pytest.raises(ValueError):
        harness.sim.inject(endpoint, fault)


def test_error_rate_hits_display_endpoints_only(start_sim: StartSim) -> None:
    harness = start_sim(error_rate=1.0)
    token = harness.access_token()  # the token endpoint is unaffected
    response = harness.user_info(token, "open_id")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    harness.sim.set(error_rate=0.0)
    assert harness.user_info(token, "open_id").status_code == 200

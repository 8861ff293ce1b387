"""Round trip: token -> refresh grant -> /v2/user/info/ while the fake clock runs out lifetimes.

Exercises rotation (new docs) and non-rotation (old docs), refresh-token expiry, access-token
expiry, POST /v2/oauth/revoke/ and the simulator's revoke/expire levers. No real sleeping.
"""

from __future__ import annotations

from simulators.tiktok import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET
from tests.simulators.conftest import StartSim
from tests.simulators.harness import REDIRECT_URI, Harness

INVALID_TOKEN_MESSAGE = "Access token is invalid, please refresh token and retry"


def assert_token_invalid(harness: Harness, token: str) -> None:
    response = harness.user_info(token, "open_id")
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("access_token_invalid", INVALID_TOKEN_MESSAGE)


def test_refresh_rotates_and_retires_the_old_refresh_token(harness: Harness) -> None:
    first = harness.login()
    second = harness.refresh(first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["open_id"] == first["open_id"] and second["scope"] == first["scope"]

    stale = harness.refresh(first["refresh_token"])
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    # The previous access token keeps working until its own expiry.
    assert harness.user_info(first["access_token"], "open_id").status_code == 200
    assert harness.refresh(second["refresh_token"]).status_code == 200
    assert harness.sim.stats()["refreshes"] == 2


def test_without_rotation_the_same_refresh_token_comes_back(start_sim: StartSim) -> None:
    harness = start_sim(rotate_refresh_tokens=False)
    first = harness.login()
    for _ in range(2):
        again = harness.refresh(first["refresh_token"]).json()
        assert again["refresh_token"] == first["refresh_token"]


def test_refresh_expires_in_is_the_remaining_lifetime(start_sim: StartSim) -> None:
    harness = start_sim(access_token_ttl=7_200, refresh_token_ttl=15_552_000)
    first = harness.login()
    assert (first["expires_in"], first["refresh_expires_in"]) == (7_200, 15_552_000)
    harness.clock.advance(10_000)
    second = harness.refresh(first["refresh_token"]).json()
    assert second["expires_in"] == 7_200
    assert second["refresh_expires_in"] == 15_552_000 - 10_000

    harness.clock.advance(15_552_000)
    expired = harness.refresh(second["refresh_token"])
    assert expired.json()["error"] == "invalid_grant"


def test_refresh_extends_lifetime_knob(start_sim: StartSim) -> None:
    harness = start_sim(refresh_extends_lifetime=True)
    first = harness.login()
    harness.clock.advance(5_000)
    assert harness.refresh(first["refresh_token"]).json()["refresh_expires_in"] == 31_536_000


def test_access_token_expires_with_the_clock(harness: Harness) -> None:
    login = harness.login()
    harness.clock.advance(86_399)
    assert harness.user_info(login["access_token"], "open_id").status_code == 200
    harness.clock.advance(1)
    assert_token_invalid(harness, login["access_token"])
    fresh = harness.refresh(login["refresh_token"]).json()["access_token"]
    assert harness.user_info(fresh, "open_id").status_code == 200


def test_expire_access_tokens_lever(harness: Harness) -> None:
    mine, other = harness.access_token(0), harness.access_token(1)
    assert harness.sim.expire_access_tokens(account=0) == 1
    assert_token_invalid(harness, mine)
    assert harness.user_info(other, "open_id").status_code == 200
    harness.sim.expire_access_tokens()
    assert_token_invalid(harness, other)


def test_revoke_kills_access_and_refresh_tokens(harness: Harness) -> None:
    login = harness.login()
    form = {"client_key": DEMO_CLIENT_KEY, "client_secret": DEMO_CLIENT_SECRET}
    response = harness.client.post(
        "/v2/oauth/revoke/", data={**form, "token": login["access_token"]}
    )
    assert (response.status_code, response.json()) == (200, {})
    assert_token_invalid(harness, login["access_token"])
    assert harness.refresh(login["refresh_token"]).json()["error"] == "invalid_grant"

    again = harness.client.post("/v2/oauth/revoke/", data={**form, "token": login["access_token"]})
    assert again.status_code == 400
    assert set(again.json()) == {"error", "error_description", "log_id"}


def test_revoke_account_is_the_user_disconnecting(harness: Harness) -> None:
    gone, kept = harness.login(0), harness.login(1)
    assert harness.sim.revoke_account(harness.sim.accounts[0].open_id) == 1
    assert_token_invalid(harness, gone["access_token"])
    assert harness.refresh(gone["refresh_token"]).json()["error"] == "invalid_grant"
    assert harness.user_info(kept["access_token"], "open_id").status_code == 200


def test_refresh_token_of_another_app_is_invalid_grant(start_sim: StartSim) -> None:
    apps = {DEMO_CLIENT_KEY: DEMO_CLIENT_SECRET, "sbawotherapp": "other-secret"}
    harness = start_sim(apps=apps)
    login = harness.login()
    response = harness.token(
        client_key="sbawotherapp",
        client_secret="other-secret",
        grant_type="refresh_token",
        refresh_token=login["refresh_token"],
    )
    assert response.json()["error"] == "invalid_grant"
    code = harness.sim.authorize(0, "user.info.basic", REDIRECT_URI, client_key="sbawotherapp")
    stolen = harness.exchange(code)  # the demo app presents another app's code
    assert stolen.json()["error"] == "invalid_grant"

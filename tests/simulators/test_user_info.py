"""Round trip: bearer token -> GET /v2/user/info/?fields=... -> envelope with data.user.

Checks field selection, scope enforcement, the Display error envelope in both `data` variants,
log_id format, and the synthetic profile data (clock-driven stats, signed avatar URLs).
"""

from __future__ import annotations

import re
import time

import pytest

from simulators.tiktok.data import DAY_SECONDS
from tests.simulators.conftest import StartSim
from tests.simulators.harness import USER_FIELDS, Harness

LOG_ID = re.compile(r"^\d{14}[0-9A-F]{20}$")


@pytest.mark.parametrize(
    "fields",
    ["open_id", "display_name,avatar_url", "follower_count,video_count,is_verified", USER_FIELDS],
)
def test_only_requested_fields_come_back(harness: Harness, fields: str) -> None:
    response = harness.user_info(harness.access_token(), fields)
    assert response.status_code == 200
    body = response.json()
    assert set(body["data"]["user"]) == set(fields.split(","))
    assert body["error"]["code"] == "ok" and body["error"]["message"] == ""


def test_log_id_is_utc_plus_8_time_and_hex(harness: Harness) -> None:
    log_id = harness.user_info(harness.access_token(), "open_id").json()["error"]["log_id"]
    assert LOG_ID.match(log_id)
    expected = time.strftime("%Y%m%d%H%M%S", time.gmtime(harness.clock() + 8 * 3600))
    assert log_id[:14] == expected


@pytest.mark.parametrize(
    ("fields", "code"),
    [(None, "invalid_params"), ("", "invalid_params"), ("open_id,shoe_size", "invalid_params")],
)
def test_bad_fields_are_invalid_params(harness: Harness, fields: str | None, code: str) -> None:
    response = harness.user_info(harness.access_token(), fields)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_field_without_its_scope_is_scope_permission_missed(harness: Harness) -> None:
    token = harness.access_token(scopes="user.info.basic")
    assert harness.user_info(token, "open_id,display_name").status_code == 200
    for field in ("follower_count", "bio_description"):
        response = harness.user_info(token, f"open_id,{field}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "scope_permission_missed"


@pytest.mark.parametrize(("variant", "has_data"), [("empty", True), ("absent", False)])
def test_error_data_key_variants(start_sim: StartSim, variant: str, has_data: bool) -> None:
    harness = start_sim(error_data_key=variant)
    body = harness.user_info("act.not-a-token", "open_id").json()
    assert ("data" in body) is has_data
    if has_data:
        assert body["data"] == {}
    assert set(body["error"]) == {"code", "message", "log_id"}
    assert body["error"]["code"] == "access_token_invalid"


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer act.unknown!0000"])
def test_missing_or_unknown_bearer_is_401(harness: Harness, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = harness.client.get("/v2/user/info/", params={"fields": "open_id"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "access_token_invalid"


def test_stats_grow_by_whole_days(harness: Harness) -> None:
    fields = "follower_count,likes_count,following_count,video_count"

    def stats() -> dict[str, int]:
        # A fresh token each time: days pass, and access tokens live one day.
        return harness.user_info(harness.access_token(), fields).json()["data"]["user"]

    today = stats()
    harness.clock.advance(3_600)
    assert stats() == today  # growth is per whole day
    harness.clock.advance(3 * DAY_SECONDS)
    later = stats()
    assert later["follower_count"] > today["follower_count"]
    assert later["likes_count"] > today["likes_count"]
    assert later["following_count"] >= today["following_count"]
    assert later["video_count"] == today["video_count"] == 30


def test_profile_shapes(harness: Harness) -> None:
    user = harness.user_info(harness.access_token(), USER_FIELDS).json()["data"]["user"]
    expires = int(re.search(r"x-expires=(\d+)", user["avatar_url"]).group(1))
    assert expires == int(harness.clock()) + 2 * DAY_SECONDS
    assert re.search(r"x-signature=[0-9a-f]+$", user["avatar_url_100"])
    assert user["profile_deep_link"].startswith("https://vm.tiktok.com/")
    assert isinstance(user["is_verified"], bool)
    assert all(isinstance(user[k], int) for k in ("follower_count", "likes_count"))


def test_empty_bios_and_unicode_names_exist(harness: Harness) -> None:
    users = [
        harness.user_info(harness.access_token(i), USER_FIELDS).json()["data"]["user"]
        for i in range(len(harness.sim.accounts))
    ]
    assert any(user["bio_description"] == "" for user in users)
    names = [user["display_name"] for user in users]
    assert any(not name.isascii() for name in names)
    assert any(ord(char) > 0x1F000 for name in names for char in name)  # an emoji


def test_deep_link_changes_over_time(harness: Harness) -> None:
    token = harness.access_token()
    first = harness.user_info(token, "profile_deep_link").json()["data"]["user"]
    harness.clock.advance(1_800)
    second = harness.user_info(token, "profile_deep_link").json()["data"]["user"]
    assert first != second  # like the recording: never use it as a key

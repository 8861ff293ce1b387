"""Round trip: bearer token -> POST /v2/video/list/ pages, following `cursor` until has_more=false.

Covers newest-first order, cursor milliseconds vs create_time seconds, max_count limits,
zero-video accounts, scope and fields rules, deletions, and a 100,000-video account.
"""

from __future__ import annotations

import pytest

from tests.simulators.conftest import StartSim
from tests.simulators.harness import Harness


def test_pages_are_newest_first_with_a_millisecond_cursor(harness: Harness) -> None:
    token = harness.access_token()
    first = harness.video_list(token, {"max_count": 5}).json()["data"]
    times = [video["create_time"] for video in first["videos"]]
    assert len(times) == 5 and first["has_more"] is True
    assert times == sorted(times, reverse=True) and len(set(times)) == 5
    assert first["cursor"] == times[-1] * 1000

    second = harness.video_list(token, {"max_count": 5, "cursor": first["cursor"]}).json()["data"]
    assert all(video["create_time"] * 1000 < first["cursor"] for video in second["videos"])
    assert second["videos"][0]["create_time"] < times[-1]


def test_full_walk_equals_video_count_without_duplicates(harness: Harness) -> None:
    token = harness.access_token()
    videos = harness.walk(token, max_count=7)
    ids = [video["id"] for video in videos]
    assert len(ids) == len(set(ids)) == harness.sim.accounts[0].video_count == 30
    count = harness.user_info(token, "video_count").json()["data"]["user"]["video_count"]
    assert count == 30


def test_default_page_size_is_ten(harness: Harness) -> None:
    data = harness.video_list(harness.access_token()).json()["data"]
    assert len(data["videos"]) == 10


@pytest.mark.parametrize("body", [{"max_count": 21}, {"max_count": 0}, {"cursor": "soon"}])
def test_out_of_range_parameters_are_invalid_params(harness: Harness, body: dict) -> None:
    response = harness.video_list(harness.access_token(), body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_params"


def test_zero_video_account_matches_the_recording(harness: Harness) -> None:
    empty = next(a for a in harness.sim.accounts if a.video_count == 0)
    assert empty.index % 4 == 3
    response = harness.video_list(harness.access_token(empty.index), {"max_count": 20})
    assert response.status_code == 200
    assert response.json()["data"] == {"cursor": 0, "has_more": False, "videos": []}


def test_video_list_needs_its_scope(harness: Harness) -> None:
    response = harness.video_list(harness.access_token(scopes="user.info.basic"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "scope_not_authorized"


def test_only_requested_fields_and_the_fields_knob(start_sim: StartSim) -> None:
    harness = start_sim()
    token = harness.access_token()
    data = harness.video_list(token, fields="id,title").json()["data"]
    assert all(set(video) == {"id", "title"} for video in data["videos"])
    assert harness.video_list(token, fields=None).json()["error"]["code"] == "invalid_params"

    harness.sim.set(video_list_requires_fields=False)
    lenient = harness.video_list(token, fields=None).json()["data"]
    assert {"id", "create_time"} <= set(lenient["videos"][0])


def test_deleted_video_vanishes_everywhere(harness: Harness) -> None:
    token = harness.access_token()
    victim = harness.sim.video_ids(0, 3, 4)[0]
    harness.sim.delete_video(0, victim)
    ids = [video["id"] for video in harness.walk(token, max_count=4)]
    assert victim not in ids and len(ids) == 29
    assert harness.sim.accounts[0].video_count == 29
    assert harness.video_query(token, [victim]).json()["data"]["videos"] == []
    with pytest.raises(ValueError, match="does not belong"):
        harness.sim.delete_video(1, victim)


def test_custom_cursor_between_two_videos(harness: Harness) -> None:
    token = harness.access_token()
    page = harness.video_list(token, {"max_count": 3}).json()["data"]["videos"]
    between = (page[0]["create_time"] + page[1]["create_time"]) // 2 * 1000
    older = harness.video_list(token, {"max_count": 2, "cursor": between}).json()["data"]
    assert [video["id"] for video in older["videos"]] == [page[1]["id"], page[2]["id"]]


def test_hundred_thousand_videos_page_from_any_cursor(start_sim: StartSim) -> None:
    harness = start_sim(accounts=1, video_count_overrides={0: 100_000})
    token = harness.access_token()
    assert harness.sim.accounts[0].video_count == 100_000
    last_two = harness.sim.video_ids(0, 99_998, 100_000)
    third_last = harness.sim.video_ids(0, 99_997, 99_998)[0]
    time_of = harness.video_query(token, [third_last], "create_time").json()["data"]["videos"]
    cursor = time_of[0]["create_time"] * 1000
    data = harness.video_list(token, {"max_count": 20, "cursor": cursor}).json()["data"]
    assert [video["id"] for video in data["videos"]] == last_two
    assert data["has_more"] is False
    first = harness.video_list(token, {"max_count": 20}).json()["data"]
    assert first["videos"][0]["id"] == harness.sim.video_ids(0, 0, 1)[0]

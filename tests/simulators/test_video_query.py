"""Round trip: ids from /v2/video/list/ -> POST /v2/video/query/ -> fresh video objects.

Foreign and unknown ids are silently left out (200 ok, as recorded); more than 20 ids, a missing
`filters` object or missing `fields` are invalid_params.
"""

from __future__ import annotations

import pytest

from tests.simulators.harness import Harness


def test_query_returns_own_videos_and_omits_foreign_ones(harness: Harness) -> None:
    token = harness.access_token(0)
    own = harness.sim.video_ids(0, 0, 3)
    foreign = harness.sim.video_ids(1, 0, 2)
    unknown = ["7000000000000000000", "not-an-id", "1234"]
    response = harness.video_query(token, [*own, *foreign, *unknown], "id,title,cover_image_url")
    assert response.status_code == 200
    body = response.json()
    assert body["error"]["code"] == "ok"
    data = body["data"]
    assert [video["id"] for video in data["videos"]] == own
    assert data["cursor"] == 0 and data["has_more"] is False
    assert all(set(video) == {"id", "title", "cover_image_url"} for video in data["videos"])


def test_query_matches_the_list_objects(harness: Harness) -> None:
    token = harness.access_token(0)
    listed = harness.video_list(token, {"max_count": 4}).json()["data"]["videos"]
    queried = harness.video_query(token, [video["id"] for video in listed]).json()["data"]
    assert queried["videos"] == listed


def test_only_foreign_ids_give_an_empty_ok(harness: Harness) -> None:
    response = harness.video_query(harness.access_token(0), harness.sim.video_ids(2, 0, 1))
    assert response.status_code == 200
    assert response.json()["data"] == {"videos": [], "cursor": 0, "has_more": False}


def test_twenty_ids_pass_and_twenty_one_fail(harness: Harness) -> None:
    token = harness.access_token(0)
    ids = harness.sim.video_ids(0, 0, 21)
    assert len(harness.video_query(token, ids[:20]).json()["data"]["videos"]) == 20
    response = harness.video_query(token, ids)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_params"


@pytest.mark.parametrize("body", [{}, {"filters": {}}, {"filters": {"video_ids": "7"}}])
def test_filters_are_required(harness: Harness, body: dict) -> None:
    response = harness.client.post(
        "/v2/video/query/",
        params={"fields": "id"},
        json=body,
        headers={"Authorization": f"Bearer {harness.access_token(0)}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_params"


def test_query_needs_fields_and_scope(harness: Harness) -> None:
    ids = harness.sim.video_ids(0, 0, 1)
    no_fields = harness.video_query(harness.access_token(0), ids, fields=None)
    assert no_fields.json()["error"]["code"] == "invalid_params"
    no_scope = harness.video_query(harness.access_token(0, "user.info.basic"), ids)
    assert no_scope.status_code == 401
    assert no_scope.json()["error"]["code"] == "scope_not_authorized"

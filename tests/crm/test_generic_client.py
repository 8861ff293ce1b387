"""GenericClient over httpx.MockTransport: the JSON body, method, auth header and answers.

The generic preset talks to an endpoint of the user's own, so the test plays that endpoint with a
MockTransport handler (per the house style for client tests) and inspects what it received.
"""

import json

import httpx
import pytest

from resources.crm.config import GenericSettings
from resources.crm.errors import AuthError
from resources.crm.generic import GenericClient
from resources.crm.http import CrmHttp
from resources.crm.models import TRANSIENT, VALIDATION

URL = "https://hooks.example.com/ingest/{object}?key=not-shown"


def video(index: int, **overrides: object) -> dict:
    return {
        "video_id": f"7{index:018d}",
        "views": 100 + index,
        "title": f"clip {index}",
    } | overrides


def make_client(handler, sleeps, **settings: object) -> GenericClient:
    config = GenericSettings(URL, **({"auth_header": ("X-Api-Key", "s3cret")} | settings))
    http = CrmHttp(
        "generic", http=httpx.Client(transport=httpx.MockTransport(handler)), sleep=sleeps
    )
    return GenericClient(config, "videos", http=http)


def test_records_go_in_batches_with_the_method_header_and_object(sleeps):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = make_client(handler, sleeps, method="PUT", batch_size=2)
    results = list(client.push_batches([video(i) for i in range(5)], "video_id"))
    assert [len(r.accepted) for r in results] == [2, 2, 1]
    assert {r.method for r in seen} == {"PUT"}
    assert seen[0].url.path == "/ingest/videos" and seen[0].url.params["key"] == "not-shown"
    assert seen[0].headers["X-Api-Key"] == "s3cret"
    assert json.loads(seen[0].content) == {
        "key": "video_id",
        "object": "videos",
        "records": [video(0), video(1)],
    }


def test_per_record_results_are_honoured(sleeps):
    def handler(request: httpx.Request) -> httpx.Response:
        keys = [r["video_id"] for r in json.loads(request.content)["records"]]
        return httpx.Response(
            200,
            json={
                "results": [
                    {"key": keys[0], "status": "created"},
                    {"key": keys[1], "status": "updated"},
                    {"key": keys[2], "status": "error", "message": "title too long"},
                    {"key": keys[3], "status": "error", "message": "busy", "retryable": True},
                ]
            },
        )

    [result] = make_client(handler, sleeps).push_batches([video(i) for i in range(4)], "video_id")
    assert (len(result.created), len(result.updated)) == (1, 1)
    assert [(r.reason, r.error_class) for r in result.rejected] == [
        ("title too long", VALIDATION),
        ("busy", TRANSIENT),
    ]


def test_429_waits_for_retry_after_then_retries(sleeps):
    answers = iter([httpx.Response(429, headers={"Retry-After": "4"}), httpx.Response(200)])
    client = make_client(lambda request: next(answers), sleeps)
    [result] = client.push_batches([video(1)], "video_id")
    assert result.accepted == (video(1)["video_id"],)
    assert sleeps.waits == [4.0]


def test_a_refused_batch_is_split_to_find_the_bad_record(sleeps):
    def handler(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        if any(r["views"] < 0 for r in records):
            return httpx.Response(422, json={"message": "views must be positive"})
        return httpx.Response(200)

    records = [video(i) for i in range(4)] + [video(4, views=-1)]
    [result] = make_client(handler, sleeps).push_batches(records, "video_id")
    assert len(result.accepted) == 4
    [rejection] = result.rejected
    assert rejection.key == video(4)["video_id"] and rejection.error_class == VALIDATION
    assert "views must be positive" in rejection.reason


def test_refused_credentials_stop_without_showing_them(sleeps):
    client = make_client(lambda request: httpx.Response(401, text="no"), sleeps)
    with pytest.raises(AuthError, match="GENERIC_CRM_AUTH_HEADER") as raised:
        list(client.push_batches([video(1)], "video_id"))
    assert "s3cret" not in str(raised.value) and "not-shown" not in str(raised.value)

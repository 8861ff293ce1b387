"""The Display API client over httpx.MockTransport: retries, token refresh and call counting.

No real sleeping: the client takes the sleep function, and these tests record what it was asked.
"""

import httpx
import pytest

from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import AuthExpired, PermanentError, RateLimited, TransientError

USER_OK = {
    "data": {"user": {"open_id": "-000abc", "display_name": "Алина ✨"}},
    "error": {"code": "ok"},
}


def envelope_error(code: str) -> dict:
    return {"data": {}, "error": {"code": code, "message": code, "log_id": "L"}}


class FakeTokens:
    def __init__(self) -> None:
        self.current = "act.first!"
        self.refreshed_from: list[str] = []

    def access_token(self) -> str:
        return self.current

    def refresh(self, rejected_token: str) -> str:
        self.refreshed_from.append(rejected_token)
        self.current = "act.second!"
        return self.current


def make_client(answers: list, tokens: FakeTokens | None = None, **kwargs):
    """A client whose transport plays `answers` in order: (status, json) or an exception."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return httpx.Response(status, json=body)

    sleeps: list[float] = []
    client = TikTokClient(
        tokens or FakeTokens(),
        base_url="http://tiktok.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=sleeps.append,
        **kwargs,
    )
    return client, seen, sleeps


def test_user_info_sends_bearer_and_fields():
    client, seen, _ = make_client([(200, USER_OK)])
    user = client.get_user(["open_id", "display_name"])
    assert user.display_name == "Алина ✨"
    assert seen[0].headers["Authorization"] == "Bearer act.first!"
    assert seen[0].url.params["fields"] == "open_id,display_name"


@pytest.mark.parametrize(
    "failure",
    [
        (429, envelope_error("rate_limit_exceeded")),  # no Retry-After from TikTok
        (500, envelope_error("internal_error")),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
    ],
)
def test_retryable_failures_are_retried_with_capped_backoff(failure):
    client, seen, sleeps = make_client([failure, failure, (200, USER_OK)], backoff_cap_s=4.0)
    assert client.get_user(["open_id"]).open_id == "-000abc"
    assert len(seen) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 4.0 for s in sleeps)
    assert client.stats.retries == 2


def test_retries_give_up_with_the_typed_error():
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    client, seen, _ = make_client([rate_limited] * 3, max_attempts=3)
    with pytest.raises(RateLimited):
        client.get_user(["open_id"])
    assert len(seen) == 3 and client.stats.rate_limited == 3


def test_transport_error_message_names_no_request_details():
    failure = httpx.ConnectError("failed for http://tiktok.test/?token=act.secret")
    client, _, _ = make_client([failure] * 2, max_attempts=2)
    with pytest.raises(TransientError) as caught:
        client.get_user(["open_id"])
    assert "act.secret" not in str(caught.value)


def test_rejected_token_is_refreshed_once_and_the_same_request_repeated():
    tokens = FakeTokens()
    client, seen, _ = make_client(
        [(401, envelope_error("access_token_invalid")), (200, USER_OK)], tokens
    )
    client.get_user(["open_id"])
    assert tokens.refreshed_from == ["act.first!"]
    assert [r.headers["Authorization"] for r in seen] == ["Bearer act.first!", "Bearer act.second!"]
    assert client.stats.refreshes == 1


def test_second_rejection_after_refresh_is_final():
    expired = (401, envelope_error("access_token_invalid"))
    client, seen, _ = make_client([expired, expired])
    with pytest.raises(AuthExpired):
        client.get_user(["open_id"])
    assert len(seen) == 2


def test_permanent_errors_are_not_retried():
    client, seen, _ = make_client([(400, envelope_error("invalid_params"))])
    with pytest.raises(PermanentError):
        client.get_user(["open_id"])
    assert len(seen) == 1


def test_query_batches_twenty_ids_per_request():
    page = {"data": {"videos": [], "cursor": 0, "has_more": False}, "error": {"code": "ok"}}
    client, seen, _ = make_client([(200, page)] * 3)
    client.query_videos([str(10**18 + i) for i in range(45)], ["id"])
    assert [len(__import__("json").loads(r.content)["filters"]["video_ids"]) for r in seen] == [
        20,
        20,
        5,
    ]

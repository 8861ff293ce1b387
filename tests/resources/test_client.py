"""The Display API client over httpx.MockTransport: retries, budget, circuit breaker, refresh.

No real sleeping: the client takes the sleep function and the clock; `sleep` only moves the fake
clock, and these tests record what it was asked.
"""

import httpx
import pytest

from resources.ratelimit.budget import Admission
from resources.tiktok.breaker import CircuitBreaker
from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import (
    AuthExpired,
    CircuitOpen,
    PermanentError,
    RateLimited,
    TransientError,
)

USER_OK = {
    "data": {"user": {"open_id": "-000abc", "display_name": "Алина ✨"}},
    "error": {"code": "ok"},
}


def envelope_error(code: str) -> dict:
    return {"data": {}, "error": {"code": code, "message": code, "log_id": "L"}}


class FakeClock:
    """`now` for the client; `sleep` records the wait and moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeTokens:
    def __init__(self) -> None:
        self.current = "act.first!"
        self.refreshed_from: list[str] = []
        self.refresh_calls = 0
        self.handed_out_at: list[float] = []
        self.clock: FakeClock | None = None

    def access_token(self) -> str:
        if self.clock is not None:
            self.handed_out_at.append(self.clock.now)
        return self.current

    def refresh(self, rejected_token: str) -> str:
        self.refreshed_from.append(rejected_token)
        self.refresh_calls += 1
        self.current = "act.second!"
        return self.current


def make_client(answers: list, tokens: FakeTokens | None = None, **kwargs):
    """A client whose transport plays `answers` in order: (status, json) or an exception."""
    seen: list[httpx.Request] = []
    repeat_last = kwargs.pop("repeat_last", False)  # the last answer is given forever

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[0] if repeat_last and len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        if isinstance(body, bytes):  # raw bytes: a body cut off or garbled on the way
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    clock = FakeClock()
    client = TikTokClient(
        tokens or FakeTokens(),
        base_url="http://tiktok.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=clock.sleep,
        now=clock,
        **kwargs,
    )
    client.clock = clock
    return client, seen, clock.slept


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


def test_transient_failures_give_up_after_max_attempts_with_the_typed_error():
    failure = (500, envelope_error("internal_error"))
    client, seen, _ = make_client([failure] * 3, max_attempts=3)
    with pytest.raises(TransientError):
        client.get_user(["open_id"])
    assert len(seen) == 3 and client.stats.retries == 2


def test_429s_are_waited_out_beyond_max_attempts_within_the_patience():
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    client, seen, sleeps = make_client(
        [rate_limited] * 8 + [(200, USER_OK)], max_attempts=3, backoff_cap_s=10.0
    )
    assert client.get_user(["open_id"]).open_id == "-000abc"
    assert len(seen) == 9 and client.stats.rate_limited == 8 and client.stats.retries == 8
    assert sum(sleeps) < 300.0  # within the default patience


def test_429s_past_the_patience_fail_naming_the_learned_limit_and_the_setting():
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    budget = RecordingBudget(wait_s=0.0)
    client, seen, _ = make_client(
        [rate_limited],
        repeat_last=True,
        budget=budget,
        rate_limit_patience_s=90.0,
        backoff_cap_s=10.0,
    )
    with pytest.raises(RateLimited) as caught:
        client.get_user(["open_id"])
    assert client.clock.now >= 90.0  # TikTok's one-minute window was waited out, and more
    assert len(budget.refused) == len(seen) == client.stats.rate_limited
    err = caught.value
    assert f"lowered user_info to {budget.limit} requests per minute" in str(err)
    assert f"TIKTOK_RATE_LIMITS=user_info={budget.limit}" in err.what_to_do
    assert "TIKTOK_RATE_LIMIT_PATIENCE_S" in err.what_to_do
    meta = client.stats.as_metadata()
    assert meta["rate_limit_learned"] == f"user_info={budget.limit}"


def test_time_queued_in_our_own_budget_does_not_count_against_the_patience():
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    budget = RecordingBudget(wait_s=100.0)  # a slow shared budget: each admission waits 100 s
    client, seen, _ = make_client(
        [rate_limited] * 3 + [(200, USER_OK)], budget=budget, rate_limit_patience_s=60.0
    )
    budget.clock = client.clock
    assert client.get_user(["open_id"]).open_id == "-000abc"
    assert len(seen) == 4 and client.clock.now > 300.0


def test_the_token_is_taken_after_the_budget_wait():
    tokens = FakeTokens()
    budget = RecordingBudget(wait_s=30.0)
    client, _, _ = make_client([(200, USER_OK)], tokens, budget=budget)
    budget.clock = tokens.clock = client.clock
    client.get_user(["open_id"])
    assert tokens.handed_out_at == [30.0]  # after the wait, so its freshness is checked then


def test_refreshes_ahead_of_expiry_count_like_refreshes_after_a_rejection():
    class ExpiringTokens(FakeTokens):
        def access_token(self) -> str:  # every token is about to expire: refreshed each time
            self.refresh_calls += 1
            return self.current

    tokens = ExpiringTokens()
    client, _, _ = make_client([(200, USER_OK)] * 3, tokens)
    for _ in range(3):
        client.get_user(["open_id"])
    meta = client.stats.as_metadata()
    assert meta["token_refreshes"] == 3 and meta["token_refreshes_by_endpoint"] == "user_info=3"


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


def test_second_rejection_after_refresh_is_final_and_does_not_advise_a_reconnect():
    expired = (401, envelope_error("access_token_invalid"))
    client, seen, _ = make_client([expired, expired])
    with pytest.raises(AuthExpired) as caught:
        client.get_user(["open_id"])
    assert len(seen) == 2
    assert "reconnect" not in caught.value.what_to_do  # only invalid_grant means reconnect
    assert client.stats.as_metadata()["token_rejected"] == 2


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


class RecordingBudget:
    """A `RateBudget` that grants after `wait_s` (moving `clock`), and cuts 30% per refusal."""

    def __init__(self, wait_s: float = 0.25, limit: int = 600) -> None:
        self.asked: list[str] = []
        self.refused: list[Admission] = []
        self.wait_s = wait_s
        self.limit = limit
        self.clock: FakeClock | None = None

    def admit(self, endpoint: str) -> Admission:
        self.asked.append(endpoint)
        if self.clock is not None:
            self.clock.now += self.wait_s
        return Admission(endpoint, self.wait_s, 0.0, self.limit, 600)

    def rate_limited(self, admission: Admission) -> int:
        self.refused.append(admission)
        self.limit = max(1, int(self.limit * 0.7))
        return self.limit


def test_every_attempt_takes_its_place_in_the_budget_and_the_wait_is_reported():
    budget = RecordingBudget()
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    client, _, sleeps = make_client([rate_limited, (200, USER_OK)], budget=budget)
    client.get_user(["open_id"])
    assert budget.asked == ["user_info", "user_info"]  # the retry is budgeted too
    meta = client.stats.as_metadata()
    assert meta["api_requests"] == 2 and meta["api_rate_limited"] == 1
    assert meta["seconds_waited_for_budget"] == 0.5
    assert meta["seconds_waited"] == round(0.5 + sum(sleeps), 3)
    assert meta["api_rate_limited_by_endpoint"] == "user_info=1"
    assert meta["api_retries_by_endpoint"] == "user_info=1"
    assert meta["budget_waits"] == 2 and meta["budget_waits_by_endpoint"] == "user_info=2"
    # The refusal was reported to the budget, which lowered the limit: metadata shows it.
    assert budget.refused[0].endpoint == "user_info"
    assert meta["rate_limit_per_minute_by_endpoint"] == "user_info=420"
    assert meta["rate_limit_learned"] == "user_info=420"


def test_circuit_opens_after_consecutive_failures_and_fails_fast_with_its_kind():
    failure = (500, envelope_error("internal_error"))
    breaker = CircuitBreaker(threshold=3, cooldown_s=60.0, now=lambda: 0.0)
    client, seen, _ = make_client([failure] * 3, breaker=breaker, max_attempts=6)
    with pytest.raises(CircuitOpen) as caught:
        client.get_user(["open_id"])
    assert len(seen) == 3  # the 4th attempt never left: the circuit was open
    assert caught.value.kind == "transient"
    assert client.stats.circuit_opened == 1
    with pytest.raises(CircuitOpen):  # the next call fails fast too, without a request
        client.get_user(["open_id"])
    assert len(seen) == 3


def test_429s_never_open_the_circuit():
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    breaker = CircuitBreaker(threshold=2, cooldown_s=60.0, now=lambda: 0.0)
    client, seen, _ = make_client([rate_limited] * 5 + [(200, USER_OK)], breaker=breaker)
    assert client.get_user(["open_id"]).open_id == "-000abc"
    assert len(seen) == 6 and client.stats.circuit_opened == 0


def test_circuit_lets_a_probe_through_after_the_cooldown_and_closes_on_success():
    clock = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=30.0, now=lambda: clock[0])
    failure = (500, envelope_error("internal_error"))
    client, _, _ = make_client([failure, failure, (200, USER_OK)], breaker=breaker)
    with pytest.raises(CircuitOpen):
        client.get_user(["open_id"])
    clock[0] = 31.0
    assert client.get_user(["open_id"]).open_id == "-000abc"
    breaker.check("user_info")  # closed again: no exception


def test_permanent_and_contract_errors_do_not_count_towards_the_circuit():
    breaker = CircuitBreaker(threshold=1, now=lambda: 0.0)
    client, _, _ = make_client([(400, envelope_error("invalid_params"))], breaker=breaker)
    with pytest.raises(PermanentError):
        client.get_user(["open_id"])
    breaker.check("user_info")


def test_query_batches_are_streamed_with_the_ids_they_asked_for():
    video = {"id": "7300000000000000001", "create_time": 1_700_000_000}
    page = {"data": {"videos": [video], "cursor": 0, "has_more": False}, "error": {"code": "ok"}}
    client, _, _ = make_client([(200, page)] * 2)
    batches = list(client.iter_query_batches([str(10**18 + i) for i in range(25)], ["id"]))
    assert [len(asked) for asked, _ in batches] == [20, 5]
    assert [len(found) for _, found in batches] == [1, 1]


def test_a_token_rejected_on_page_two_is_refreshed_and_page_two_asked_again():
    def video(n: int) -> dict:
        return {"id": str(7_300_000_000_000_000_000 + n), "create_time": 1_700_000_000 + n}

    def page(ids: list[int], cursor: int, has_more: bool) -> dict:
        data = {"videos": [video(n) for n in ids], "cursor": cursor, "has_more": has_more}
        return {"data": data, "error": {"code": "ok"}}

    tokens = FakeTokens()
    client, seen, _ = make_client(
        [
            (200, page([9, 8], 8000, True)),
            (401, envelope_error("access_token_invalid")),
            (200, page([7], 7000, False)),
        ],
        tokens,
    )
    ids = [v.id for v in client.iter_videos(["id", "create_time"])]
    assert len(ids) == 3 and tokens.refreshed_from == ["act.first!"]
    cursors = [__import__("json").loads(r.content).get("cursor") for r in seen]
    assert cursors == [None, 8000, 8000]  # the same page, resumed with the new token
    assert seen[2].headers["Authorization"] == "Bearer act.second!"


class DownBudget:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def admit(self, endpoint: str) -> Admission:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the request budget store redis://127.0.0.1 failed")
        return Admission(endpoint, 0.0, 0.0, 600, 600)

    def rate_limited(self, admission: Admission) -> int:
        return admission.limit


def test_a_budget_store_that_is_down_is_a_transient_error_and_retried():
    client, seen, _ = make_client([(200, USER_OK)], budget=DownBudget(failures=2))
    assert client.get_user(["open_id"]).open_id == "-000abc"
    assert len(seen) == 1 and client.stats.retries == 2
    client, seen, _ = make_client([], budget=DownBudget(failures=10), max_attempts=2)
    with pytest.raises(TransientError, match="budget store"):
        client.get_user(["open_id"])
    assert seen == []


def test_429s_after_a_token_refresh_still_end_with_the_learned_limit_and_the_setting():
    rate_limited = (429, envelope_error("rate_limit_exceeded"))
    expired = (401, envelope_error("access_token_invalid"))
    budget = RecordingBudget(wait_s=0.0)
    client, _, _ = make_client(
        [expired, rate_limited], repeat_last=True, budget=budget, rate_limit_patience_s=60.0
    )
    with pytest.raises(RateLimited) as caught:
        client.get_user(["open_id"])
    assert "patience 60s" in str(caught.value)
    assert f"TIKTOK_RATE_LIMITS=user_info={budget.limit}" in caught.value.what_to_do
    assert client.stats.refreshes == 1


def test_call_stats_stay_exact_when_threads_count_and_read_at_once():
    import threading

    from resources.tiktok.call_stats import CallStats

    stats = CallStats()
    admission = Admission("video_list", 0.5, 0.0, 150, 600)

    def count() -> None:
        for _ in range(2_000):
            stats.admitted(admission)
            stats.count_request("video_list")
            stats.add("retries_by_endpoint", "video_list")

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        stats.as_metadata()  # reading meanwhile never fails
    meta = stats.as_metadata()
    assert (meta["api_requests"], meta["api_retries"], meta["budget_waits"]) == (16_000,) * 3
    assert meta["rate_limit_learned"] == "video_list=150"


TRUNCATED_USER = b'{"data": {"user": {"open_id": "-000abc", "display_na'


@pytest.mark.parametrize("cut", [TRUNCATED_USER, b"<html>upstream reset</html>", b""])
def test_a_truncated_or_garbled_200_is_retried_and_the_call_completes(cut):
    client, seen, sleeps = make_client([(200, cut), (200, cut), (200, USER_OK)])
    assert client.get_user(["open_id"]).open_id == "-000abc"
    assert len(seen) == 3 and len(sleeps) == 2
    assert client.stats.retries == 2


def test_a_body_that_never_parses_fails_as_transient_after_max_attempts():
    client, seen, _ = make_client([(200, TRUNCATED_USER)] * 3, max_attempts=3)
    with pytest.raises(TransientError, match="not valid JSON") as caught:
        client.get_user(["open_id"])
    assert len(seen) == 3  # bounded
    assert caught.value.kind == "transient"


class NoTokens(FakeTokens):
    """The app's key is unset: no token can be had, so no request may leave."""

    def access_token(self) -> str:
        raise PermanentError("TIKTOK_CLIENT_KEY is not set", endpoint="oauth_token")


def test_requests_are_counted_when_sent_so_no_token_reports_zero_calls():
    budget = DownBudget(failures=0)
    client, seen, _ = make_client([], tokens=NoTokens(), budget=budget)
    with pytest.raises(PermanentError):
        client.get_user(["open_id"])
    assert seen == []  # TikTok saw nothing ...
    assert client.stats.as_metadata()["api_requests"] == 0  # ... and the summary says so
    client, seen, _ = make_client([(200, USER_OK)], budget=DownBudget(failures=2))
    client.get_user(["open_id"])
    # Two admissions failed (the store was down) before one request was sent.
    assert len(seen) == client.stats.as_metadata()["api_requests"] == 1

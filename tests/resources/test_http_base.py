"""The base both HTTP stacks share: error redaction and metadata, the retry policy, call stats.

The retry policy is driven by plain functions that fail as told; `sleep` only records the wait, so
nothing sleeps for real. Transport errors come from an `httpx.MockTransport`.
"""

import threading

import httpx
import pytest

from resources.crm.errors import CrmError
from resources.crm.errors import RateLimited as CrmRateLimited
from resources.crm.models import CallStats as CrmCallStats
from resources.http_base import ApiError, CallStats, is_loopback, retrying, send
from resources.ratelimit.budget import Admission
from resources.tiktok.call_stats import CallStats as TikTokCallStats
from resources.tiktok.errors import TikTokError
from resources.tiktok.errors import TransientError as TikTokTransient

TOKEN = "act.9f8e7d6c5b4a3210"


class Transient(ApiError):
    kind = "transient"
    retryable = True


class Refused(ApiError):
    kind = "permanent"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def failing(*errors: Exception, answer: str = "ok"):
    """A call that raises `errors` in order, then returns `answer`; `calls` counts the tries."""
    pending = list(errors)

    def call() -> str:
        call.calls += 1
        if pending:
            raise pending.pop(0)
        return answer

    call.calls = 0
    return call


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "field"),
    [
        # TikTok: its log id may carry what the server echoed
        (TikTokError(f"user_info: bad token {TOKEN}", code=TOKEN, log_id=TOKEN), "log_id"),
        # CRM: so may its correlation id
        (CrmError(f"401: {TOKEN}", service="hubspot", code=TOKEN, correlation_id=TOKEN), "code"),
    ],
)
def test_redact_scrubs_the_message_its_args_and_the_stack_fields(error, field):
    error.redact(TOKEN, "")
    assert TOKEN not in str(error) and TOKEN not in error.message and "[redacted]" in str(error)
    assert TOKEN not in repr(error.args) and TOKEN not in str(error.metadata())
    assert "[redacted]" in getattr(error, field)


def test_redact_catches_a_secret_cut_short_where_the_message_quotes_a_body():
    error = Transient(f'answer: {{"echo": "{TOKEN[:12]}')
    error.redact(TOKEN)
    assert TOKEN[:12] not in error.message


def test_metadata_puts_the_stack_facts_between_kind_and_status_and_drops_missing_ones():
    tiktok = TikTokError("x", endpoint="video_list", status=500)
    keys = list(tiktok.metadata())
    assert (keys[0], keys[-1]) == ("error_kind", "http_status")
    assert "tiktok_log_id" not in tiktok.metadata()
    crm = CrmError("x", service="salesforce", correlation_id="c-1")
    assert crm.metadata() == {
        "error_kind": "error",
        "crm": "salesforce",
        "crm_correlation_id": "c-1",
    }


def test_both_stacks_derive_from_the_one_base():
    assert issubclass(TikTokError, ApiError) and issubclass(CrmError, ApiError)
    assert TikTokTransient("x").retry_after_s is None


# --- retry policy -------------------------------------------------------------------------------


def test_a_retryable_error_is_retried_with_capped_full_jitter_and_counted():
    stats, sleeps = CallStats(), Sleeps()
    call = failing(Transient("a"), Transient("b"), Transient("c"))
    policy = retrying(stats, "video_list", max_attempts=4, backoff_cap_s=3.0, sleep=sleeps)
    assert policy(call) == "ok"
    assert call.calls == 4 and len(sleeps.waits) == 3
    # full jitter: each wait is anywhere in [0, min(cap, 2^n)]
    assert all(0 <= wait <= bound for wait, bound in zip(sleeps.waits, (1, 2, 3), strict=True))
    assert stats.retries_by_endpoint == {"video_list": 3}
    assert stats.seconds_waited == pytest.approx(sum(sleeps.waits))


def test_the_last_error_itself_is_raised_after_max_attempts():
    last = Transient("third")
    call = failing(Transient("first"), Transient("second"), last)
    with pytest.raises(Transient) as caught:
        retrying(CallStats(), "e", max_attempts=3, sleep=Sleeps())(call)
    assert caught.value is last and call.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        Refused("a 400"),  # our error, not retryable
        ValueError("a bug"),  # not ours at all
    ],
)
def test_anything_not_retryable_is_raised_at_once(error):
    sleeps, stats = Sleeps(), CallStats()
    call = failing(error)
    with pytest.raises(type(error)):
        retrying(stats, "e", max_attempts=5, sleep=sleeps)(call)
    assert call.calls == 1 and sleeps.waits == [] and stats.retries == 0


@pytest.mark.parametrize(
    ("asked_s", "waited_s"),
    [
        (7.0, 7.0),  # the server's wait replaces the backoff
        (600.0, 60.0),  # capped by max_wait_s
    ],
)
def test_a_server_requested_wait_takes_precedence_capped(asked_s, waited_s):
    sleeps, stats = Sleeps(), CallStats()
    limited = CrmRateLimited("429", service="hubspot", retry_after_s=asked_s)
    policy = retrying(stats, "hubspot", max_attempts=3, max_wait_s=60.0, sleep=sleeps)
    assert policy(failing(limited)) == "ok"
    assert sleeps.waits == [waited_s] and stats.seconds_waited == waited_s


def test_a_stop_of_the_clients_own_replaces_the_attempt_limit():
    call = failing(*(Transient(str(n)) for n in range(8)))
    policy = retrying(CallStats(), "e", max_attempts=2, sleep=Sleeps(), stop=lambda s: False)
    assert policy(call) == "ok" and call.calls == 9


# --- transport errors ---------------------------------------------------------------------------


def test_a_transport_error_becomes_the_transient_error_naming_only_its_class():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(Transient) as caught:
        send(http, "GET", f"https://api.example/x?key={TOKEN}", peer="the CRM", transient=Transient)
    assert str(caught.value) == "ConnectError talking to the CRM"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_send_hands_the_answer_back_untouched():
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503, text="busy")))
    response = send(http, "POST", "https://api.example/x", peer="TikTok", transient=Transient)
    assert (response.status_code, response.text) == (503, "busy")


# --- loopback hosts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),  # the whole 127.0.0.0/8 block
        ("::1", True),
        ("api.hubapi.com", False),
        ("10.0.0.1", False),  # private, but another machine
        ("", False),  # a URL without a host
        ("http://127.0.0.1", False),  # a URL, not a host name
    ],
)
def test_only_a_host_that_never_leaves_the_machine_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


# --- call stats ---------------------------------------------------------------------------------


def test_base_stats_report_totals_under_the_shared_keys():
    stats = CallStats()
    stats.count_request("a")
    stats.count_request("b")
    stats.count_rate_limited("a")
    stats.count_retry("a", 1.25)
    stats.count_wait("b", 0.5)
    assert stats.as_metadata() == {
        "api_requests": 2,
        "api_retries": 1,
        "api_rate_limited": 1,
        "seconds_waited": 1.75,
    }


def test_crm_stats_count_under_the_service_and_keep_their_attributes_and_keys():
    stats = CrmCallStats(service="hubspot")
    stats.count_request("hubspot")
    stats.count_retry("hubspot", 0.0)  # how HubSpot's client counts a re-poll
    stats.limits["hubspot_daily_remaining"] = "99"
    assert (stats.requests, stats.retries, stats.rate_limited, stats.seconds_waited) == (1, 1, 0, 0)
    assert stats.as_metadata() == {
        "api_requests": 1,
        "api_retries": 1,
        "api_rate_limited": 0,
        "seconds_waited": 0,
        "hubspot_daily_remaining": "99",
    }


def test_tiktok_stats_add_budget_waits_to_the_seconds_waited():
    stats = TikTokCallStats()
    stats.admitted(Admission("video_list", 2.0, 0.0, 600, 600))
    stats.count_request("video_list")  # admitted, then sent
    stats.count_retry("video_list", 1.0)
    meta = stats.as_metadata()
    assert stats.requests == {"video_list": 1}
    assert (meta["seconds_waited"], meta["seconds_waited_in_backoff"]) == (3.0, 1.0)
    assert meta["api_requests_by_endpoint"] == "video_list=1"


def test_counts_stay_exact_when_threads_count_at_once():
    stats = CrmCallStats(service="salesforce")

    def count() -> None:
        for _ in range(1_000):
            stats.count_request("salesforce")
            stats.count_retry("salesforce", 0.001)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (stats.requests, stats.retries) == (8_000, 8_000)

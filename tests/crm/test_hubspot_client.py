"""HubSpotClient against the fake HubSpot: batches, string values, 207, 429 and the stop errors.

Every test pushes contact records shaped like the hubspot_contacts mapping's output through the
real client over HTTP to the fake on 127.0.0.1; waits go to a recording sleep that moves the
fake's clock, so nothing sleeps for real.
"""

import httpx
import pytest

from resources.crm.config import HubSpotSettings
from resources.crm.errors import ApiLimitExhausted, AuthError, TransientError
from resources.crm.http import CrmHttp
from resources.crm.hubspot import HubSpotClient, retry_after_seconds
from resources.crm.models import AUTH, TRANSIENT, VALIDATION
from tests.crm.fixtures import hubspot_client

KEY = "tiktok_open_id"


def contact(index: int, **overrides: object) -> dict:
    return {
        KEY: f"open-{index:05d}",
        "tiktok_display_name": f"Creator {index}",
        "tiktok_followers": str(1000 + index),
        "tiktok_is_verified": "false",
    } | overrides


def push(client: HubSpotClient, records: list[dict]):
    results = list(client.push_batches(records, KEY))
    total = results[0]
    for result in results[1:]:
        total += result
    return total


def test_250_records_go_in_three_batches_of_at_most_100(hubspot, sleeps):
    client = hubspot_client(hubspot, sleeps)
    result = push(client, [contact(i) for i in range(250)])
    assert len(result.created) == 250 and not result.rejected
    assert [len(r.body["inputs"]) for r in hubspot.requests] == [100, 100, 50]
    first = hubspot.requests[0]
    assert first.headers["authorization"] == f"Bearer {hubspot.token}"
    assert all(item["idProperty"] == KEY for item in first.body["inputs"])
    assert all(
        isinstance(v, str) for item in first.body["inputs"] for v in item["properties"].values()
    )
    assert len(hubspot.records()) == 250
    assert client.http.stats.requests == 3


def test_pushing_again_updates_and_never_duplicates(hubspot, sleeps):
    client = hubspot_client(hubspot, sleeps)
    push(client, [contact(i) for i in range(5)])
    again = push(client, [contact(i, tiktok_followers="7") for i in range(5)])
    assert len(again.updated) == 5 and not again.created
    assert len(hubspot.records()) == 5
    assert set(again.crm_ids) == {contact(i)[KEY] for i in range(5)}
    assert hubspot.find("contacts", KEY, "open-00003")["tiktok_followers"] == "7"


def test_null_clears_the_property_with_an_empty_string(hubspot, sleeps):
    push(hubspot_client(hubspot, sleeps), [contact(1, tiktok_display_name=None)])
    assert hubspot.find("contacts", KEY, "open-00001")["tiktok_display_name"] == ""


def test_a_non_string_value_is_rejected_locally_and_the_batch_goes_on(hubspot, sleeps):
    result = push(hubspot_client(hubspot, sleeps), [contact(1), contact(2, tiktok_followers=5)])
    assert result.created == ("open-00001",)
    [rejection] = result.rejected
    assert (rejection.key, rejection.error_class) == ("open-00002", VALIDATION)
    assert "type: string" in rejection.reason
    assert len(hubspot.requests[0].body["inputs"]) == 1


@pytest.mark.parametrize(
    ("category", "error_class"),
    [
        ("VALIDATION_ERROR", VALIDATION),  # the content: held until it changes
        ("RATE_LIMITS", TRANSIENT),  # the record's write was throttled: next run
        ("MISSING_SCOPES", AUTH),  # the app cannot write this record
    ],
)
def test_a_207_rejects_only_the_failed_inputs_with_their_class(
    hubspot, sleeps, category, error_class
):
    hubspot.fail_record("open-00001", "Property values were not valid", category)
    result = push(hubspot_client(hubspot, sleeps), [contact(i) for i in range(3)])
    assert result.created == ("open-00000", "open-00002")
    assert [(r.key, r.error_class) for r in result.rejected] == [("open-00001", error_class)]
    assert "Property values were not valid" in result.rejected[0].reason


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [
        ("3", 3.0),  # seconds
        ("10000", 10.0),  # milliseconds, as one source says HubSpot sends it
        (None, 10.0),  # no Retry-After: the X-HubSpot-RateLimit-Interval-Milliseconds window
    ],
)
def test_a_ten_secondly_429_waits_as_told_and_retries(hubspot, sleeps, retry_after, expected_wait):
    hubspot.retry_after = retry_after
    hubspot.inject("rate_limited")
    client = hubspot_client(hubspot, sleeps)
    result = push(client, [contact(1)])
    assert result.created == ("open-00001",)
    assert sleeps.waits == [expected_wait]
    assert (client.http.stats.rate_limited, client.http.stats.retries) == (1, 1)


def test_a_long_retry_after_is_capped(hubspot, sleeps):
    hubspot.retry_after = "100"  # read as seconds, then capped
    hubspot.inject("rate_limited")
    push(hubspot_client(hubspot, sleeps, max_wait_s=20.0), [contact(1)])
    assert sleeps.waits == [20.0]


def test_a_spent_window_pauses_before_the_next_batch_instead_of_earning_429(hubspot, sleeps):
    hubspot.window_max = 2
    client = hubspot_client(hubspot, sleeps)
    result = push(client, [contact(i) for i in range(500)])
    assert len(result.created) == 500
    assert client.http.stats.rate_limited == 0
    assert sleeps.waits == [10.0, 10.0]  # after requests 2 and 4
    assert hubspot.request_count == 5


def test_the_daily_limit_stops_at_once_without_retrying(hubspot, sleeps):
    hubspot.inject("daily_limit")
    client = hubspot_client(hubspot, sleeps)
    with pytest.raises(ApiLimitExhausted, match="resets at midnight") as raised:
        push(client, [contact(1)])
    assert raised.value.code == "DAILY"
    assert hubspot.request_count == 1 and sleeps.waits == []


@pytest.mark.parametrize(
    ("fault", "hint"),
    [("unauthorized", "HUBSPOT_ACCESS_TOKEN"), ("forbidden", "crm.objects.contacts.write")],
)
def test_refused_credentials_stop_with_the_fix(hubspot, sleeps, fault, hint):
    hubspot.inject(fault)
    with pytest.raises(AuthError, match=hint) as raised:
        push(hubspot_client(hubspot, sleeps), [contact(1)])
    assert hubspot.token not in str(raised.value)
    assert hubspot.request_count == 1


def test_server_errors_are_retried_then_succeed(hubspot, sleeps):
    hubspot.inject("bad_gateway")
    hubspot.inject("server_error")
    client = hubspot_client(hubspot, sleeps, backoff_cap_s=2.0)
    assert push(client, [contact(1)]).created == ("open-00001",)
    assert client.http.stats.retries == 2 and all(0 <= w <= 2.0 for w in sleeps.waits)


def test_server_errors_that_persist_give_up_after_the_attempts(hubspot, sleeps):
    hubspot.inject("server_error", 3)
    with pytest.raises(TransientError, match="500"):
        push(hubspot_client(hubspot, sleeps, max_attempts=3), [contact(1)])
    assert hubspot.request_count == 3


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": "1500"}, 1.5),  # above 120: milliseconds
        ({"retry-after": "soon", "x-hubspot-ratelimit-interval-milliseconds": "10000"}, 10.0),
        ({"retry-after": "-1"}, None),  # nonsense: fall back to the backoff
        ({}, None),
    ],
)
def test_retry_after_is_read_in_seconds_or_milliseconds(headers, seconds):
    assert retry_after_seconds(headers) == seconds


def mock_client(handler, sleeps) -> HubSpotClient:
    http = CrmHttp(
        "hubspot", http=httpx.Client(transport=httpx.MockTransport(handler)), sleep=sleeps
    )
    return HubSpotClient(HubSpotSettings("https://api.hubapi.com", "pat"), "contacts", http=http)


@pytest.mark.parametrize(
    ("status", "accepted", "transient"),
    [
        (200, 2, 0),  # a complete 200 with one result per input: written, just not told apart
        (207, 0, 2),  # a multi-status answer that names nobody: sent again next run
    ],
)
def test_results_that_cannot_be_matched_to_inputs(sleeps, status, accepted, transient):
    def handler(request: httpx.Request) -> httpx.Response:
        results = [{"id": str(n), "properties": {}, "new": True} for n in range(2)]
        return httpx.Response(status, json={"status": "COMPLETE", "results": results})

    [result] = mock_client(handler, sleeps).push_batches([contact(1), contact(2)], KEY)
    assert len(result.accepted) == accepted and len(result.rejected) == transient
    assert all(r.error_class == TRANSIENT for r in result.rejected)

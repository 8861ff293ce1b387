"""HubSpotClient against the fake HubSpot: batches, string values, 207, 429 and the stop errors.

Every test pushes contact records shaped like the hubspot_contacts mapping's output through the
real client over HTTP to the fake on 127.0.0.1; waits go to a recording sleep that moves the
fake's clock, so nothing sleeps for real.
"""

import json

import httpx
import pytest

from resources.crm.config import HubSpotSettings
from resources.crm.errors import ApiLimitExhausted, AuthError, ContractViolation, TransientError
from resources.crm.http import CrmHttp
from resources.crm.hubspot import (
    STATUS_ATTEMPTS,
    STATUS_RETRY_WAIT_S,
    HubSpotClient,
    retry_after_seconds,
)
from resources.crm.hubspot_errors import DEFAULT_RATE_LIMIT_WAIT_S
from resources.crm.models import AUTH, TRANSIENT, VALIDATION, Archive
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


# --- answers read by the contract (issue 14) ---


def test_a_canceled_batch_is_sent_again_and_recorded_only_when_complete(hubspot, sleeps):
    hubspot.answer_batches_with("CANCELED")
    client = hubspot_client(hubspot, sleeps)
    result = push(client, [contact(1), contact(2)])
    assert result.created == ("open-00001", "open-00002") and not result.rejected
    assert hubspot.request_count == 2 and sleeps.waits == [STATUS_RETRY_WAIT_S]


@pytest.mark.parametrize("status", ["CANCELED", "PENDING", "PROCESSING"])
def test_a_batch_never_complete_is_rejected_transient_never_pushed(hubspot, sleeps, status):
    hubspot.answer_batches_with(status, STATUS_ATTEMPTS)
    result = push(hubspot_client(hubspot, sleeps), [contact(1), contact(2)])
    assert not result.pushed
    assert [(r.key, r.error_class) for r in result.rejected] == [
        ("open-00001", TRANSIENT),
        ("open-00002", TRANSIENT),
    ]
    assert status in result.rejected[0].reason
    assert hubspot.request_count == STATUS_ATTEMPTS and hubspot.records() == {}


def test_an_unattributable_207_is_split_until_each_failure_stands_alone(hubspot, sleeps):
    hubspot.attributable_errors = False
    hubspot.echo_trace_ids = False  # only the idProperty value ties a result to its input
    hubspot.fail_record("open-00002", "Property values were not valid", property_name="tiktok_bio")
    hubspot.fail_record("open-00005", "Email is invalid", property_name="email")
    result = push(hubspot_client(hubspot, sleeps), [contact(i) for i in range(8)])
    assert sorted(result.created) == [f"open-{i:05d}" for i in (0, 1, 3, 4, 6, 7)]
    reasons = {r.key: r.reason for r in result.rejected}
    assert set(reasons) == {"open-00002", "open-00005"}
    assert reasons["open-00002"].startswith("Property values were not valid")
    assert reasons["open-00005"].startswith("Email is invalid")
    assert all(r.error_class == VALIDATION for r in result.rejected)
    assert len(hubspot.records()) == 6
    # 1 batch, then the two failed inputs in halves of one each.
    assert [len(r.body["inputs"]) for r in hubspot.requests] == [8, 1, 1]


def test_a_single_failed_input_takes_the_unattributed_error_without_a_split(hubspot, sleeps):
    hubspot.attributable_errors = False
    hubspot.fail_record("open-00001", "Property values were not valid")
    result = push(hubspot_client(hubspot, sleeps), [contact(i) for i in range(3)])
    assert [r.key for r in result.rejected] == ["open-00001"]
    assert hubspot.request_count == 1


def test_context_values_naming_a_failed_input_attribute_without_a_split(hubspot, sleeps):
    hubspot.fail_record("open-00001", "bad one")
    hubspot.fail_record("open-00002", "bad two")
    result = push(hubspot_client(hubspot, sleeps), [contact(i) for i in range(4)])
    assert {r.key: r.reason for r in result.rejected} == {
        "open-00001": "bad one",
        "open-00002": "bad two",
    }
    assert hubspot.request_count == 1


def test_a_200_with_fewer_results_records_those_and_resends_the_rest_once(sleeps):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        calls.append(len(inputs))
        first = inputs[0]
        result = {"id": "9", "properties": {KEY: first["id"]}, "new": True}
        body = {"status": "COMPLETE", "results": [result], "startedAt": "x", "completedAt": "y"}
        return httpx.Response(200, json=body)

    [result] = mock_client(handler, sleeps).push_batches([contact(1), contact(2)], KEY)
    assert result.created == ("open-00001", "open-00002")
    assert calls == [2, 1]


def test_an_answer_without_a_batch_status_is_a_contract_violation(sleeps):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": []})

    with pytest.raises(ContractViolation, match="batch status"):
        list(mock_client(handler, sleeps).push_batches([contact(1)], KEY))


def test_a_contract_shaped_429_waits_for_the_window_and_retries(hubspot, sleeps):
    hubspot.rate_limit_body = "contract"  # message, correlationId, category only
    hubspot.inject("rate_limited")
    client = hubspot_client(hubspot, sleeps)
    assert push(client, [contact(1)]).created == ("open-00001",)
    assert sleeps.waits == [10.0]  # X-HubSpot-RateLimit-Interval-Milliseconds


@pytest.mark.parametrize("shape", ["contract", "empty"])
def test_a_daily_429_without_policy_name_is_told_by_the_daily_header(hubspot, sleeps, shape):
    hubspot.rate_limit_body = shape
    hubspot.inject("daily_limit")
    with pytest.raises(ApiLimitExhausted, match="resets at midnight"):
        push(hubspot_client(hubspot, sleeps), [contact(1)])
    assert hubspot.request_count == 1 and sleeps.waits == []


@pytest.mark.parametrize(
    ("body", "headers", "daily", "wait"),
    [
        # Nothing but the status: one whole window and a second, then retried.
        (None, {}, False, DEFAULT_RATE_LIMIT_WAIT_S),
        ({"message": "m", "correlationId": "c", "category": "RATE_LIMITS"}, {}, False, 11.0),
        ({"message": "m", "category": "RATE_LIMITS"}, {"Retry-After": "4"}, False, 4.0),
        ({"message": "m", "policyName": "DAILY"}, {}, True, None),
        ({"message": "m", "category": "RATE_LIMITS", "subCategory": "DAILY_LIMIT"}, {}, True, None),
        ({"message": "m", "policyName": "TEN_SECONDLY_ROLLING"}, {}, False, 11.0),
    ],
)
def test_429_is_read_whatever_the_body_holds(sleeps, body, headers, daily, wait):
    answers = iter([429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status == 429:
            return httpx.Response(429, json=body, headers=headers)
        results = [{"id": "1", "properties": {KEY: "open-00001"}, "new": True}]
        ok = {"status": "COMPLETE", "results": results, "startedAt": "x", "completedAt": "y"}
        return httpx.Response(200, json=ok)

    client = mock_client(handler, sleeps)
    if daily:
        with pytest.raises(ApiLimitExhausted):
            list(client.push_batches([contact(1)], KEY))
        return
    [result] = client.push_batches([contact(1)], KEY)
    assert result.created == ("open-00001",) and sleeps.waits == [wait]


def test_archive_sends_hubspot_ids_in_batches_of_100(hubspot, sleeps):
    client = hubspot_client(hubspot, sleeps)
    pushed = push(client, [contact(i) for i in range(150)])
    archives = [Archive(k, pushed.crm_ids[k], "deleted") for k in pushed.created]
    archived = list(client.archive_batches([*archives, Archive("lost", None, "gone")], KEY))
    total = archived[0]
    for result in archived[1:]:
        total += result
    assert len(total.archived) == 150 and hubspot.records() == {}
    assert [(r.key, r.error_class) for r in total.rejected] == [("lost", VALIDATION)]
    assert [len(r.body["inputs"]) for r in hubspot.requests[2:]] == [100, 50]

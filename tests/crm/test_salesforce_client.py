"""SalesforceClient against the fake Salesforce: Collections upsert, per-record results, limits.

Contact records shaped like the salesforce_contacts mapping's output go through the real client
over HTTP to the fake on 127.0.0.1; retries sleep through a recorder, never for real.
"""

from datetime import UTC, date, datetime

import pytest

from resources.crm.errors import ApiLimitExhausted, AuthError, TargetNotFound
from resources.crm.models import AUTH, TRANSIENT, VALIDATION
from resources.crm.salesforce import SalesforceClient
from tests.crm.fixtures import salesforce_client

KEY = "TikTok_Open_Id__c"


def contact(index: int, **overrides: object) -> dict:
    return {
        KEY: f"open-{index:05d}",
        "LastName": f"Creator {index}",
        "TikTok_Followers__c": 1000 + index,
        "TikTok_Verified__c": False,
        "TikTok_Last_Synced__c": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    } | overrides


def push(client: SalesforceClient, records: list[dict]):
    results = list(client.push_batches(records, KEY))
    total = results[0]
    for result in results[1:]:
        total += result
    return total


def test_450_records_go_in_collections_of_at_most_200(salesforce, sleeps):
    client = salesforce_client(salesforce, sleeps)
    result = push(client, [contact(i) for i in range(450)])
    assert len(result.created) == 450 and not result.rejected
    assert [len(r.body["records"]) for r in salesforce.requests] == [200, 200, 50]
    first = salesforce.requests[0]
    assert first.method == "PATCH"
    assert first.path == "/services/data/v62.0/composite/sobjects/Contact/TikTok_Open_Id__c"
    assert first.body["allOrNone"] is False
    record = first.body["records"][0]
    assert record["attributes"] == {"type": "Contact"} and "Id" not in record
    assert record["TikTok_Last_Synced__c"] == "2026-01-02T03:04:05.678Z"
    assert client.http.stats.limits["salesforce_api_usage"] == "3/100000"


def test_pushing_again_updates_by_external_id_and_never_duplicates(salesforce, sleeps):
    client = salesforce_client(salesforce, sleeps)
    push(client, [contact(i) for i in range(3)])
    again = push(client, [contact(i, LastName="Renamed") for i in range(3)])
    assert len(again.updated) == 3 and not again.created
    assert len(salesforce.records()) == 3
    assert {r["LastName"] for r in salesforce.records().values()} == {"Renamed"}


def test_dates_are_sent_as_iso_days(salesforce, sleeps):
    push(salesforce_client(salesforce, sleeps), [contact(1, Birthdate=date(2001, 2, 3))])
    assert salesforce.requests[0].body["records"][0]["Birthdate"] == "2001-02-03"


@pytest.mark.parametrize(
    ("status_code", "error_class"),
    [
        ("INVALID_EMAIL_ADDRESS", VALIDATION),  # the content: held until it changes
        ("UNABLE_TO_LOCK_ROW", TRANSIENT),  # another write held the row: next run
        ("INSUFFICIENT_ACCESS", AUTH),  # the user may not edit this record
    ],
)
def test_a_partial_failure_rejects_only_that_record_with_its_class(
    salesforce, sleeps, status_code, error_class
):
    salesforce.fail_record("open-00001", status_code, "refused by the fake", ["Email"])
    result = push(salesforce_client(salesforce, sleeps), [contact(i) for i in range(3)])
    assert result.created == ("open-00000", "open-00002")
    [rejection] = result.rejected
    assert (rejection.key, rejection.error_class) == ("open-00001", error_class)
    assert rejection.reason == f"{status_code}: refused by the fake (fields: Email)"


def test_a_missing_required_field_is_a_validation_rejection(salesforce, sleeps):
    result = push(salesforce_client(salesforce, sleeps), [contact(1, LastName=None), contact(2)])
    assert result.created == ("open-00002",)
    assert result.rejected[0].reason.startswith("REQUIRED_FIELD_MISSING")


def test_a_duplicate_external_id_fails_that_record_only(salesforce, sleeps):
    salesforce.plant_duplicate("Contact", KEY, "open-00001")
    result = push(salesforce_client(salesforce, sleeps), [contact(i) for i in range(3)])
    assert [r.key for r in result.rejected] == ["open-00001"]
    assert "DUPLICATE_EXTERNAL_ID" in result.rejected[0].reason
    assert len(result.created) == 2


def test_a_300_for_the_whole_collection_is_narrowed_down_to_the_duplicate(salesforce, sleeps):
    salesforce.duplicates_as_300 = True
    salesforce.plant_duplicate("Contact", KEY, "open-00005")
    client = salesforce_client(salesforce, sleeps)
    result = push(client, [contact(i) for i in range(8)])
    assert [r.key for r in result.rejected] == ["open-00005"]
    assert "more than one Contact" in result.rejected[0].reason
    assert len(result.created) == 7
    # 1 refused collection, then halves: [0-3] ok, [4-7] refused, [4,5] refused, [6,7] ok, ...
    assert client.http.stats.requests == 7


def test_request_limit_exceeded_stops_without_retrying(salesforce, sleeps):
    salesforce.inject("request_limit_exceeded")
    client = salesforce_client(salesforce, sleeps)
    with pytest.raises(ApiLimitExhausted, match="rolling 24 hours") as raised:
        push(client, [contact(1)])
    assert raised.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert salesforce.request_count == 1 and sleeps.waits == []


def test_an_expired_session_stops_with_the_variable_to_fix(salesforce, sleeps):
    salesforce.inject("unauthorized")
    with pytest.raises(AuthError, match="SALESFORCE_ACCESS_TOKEN") as raised:
        push(salesforce_client(salesforce, sleeps), [contact(1)])
    assert raised.value.code == "INVALID_SESSION_ID"
    assert salesforce.token not in str(raised.value)


def test_an_unknown_external_id_field_says_what_to_check(salesforce, sleeps):
    client = salesforce_client(salesforce, sleeps)
    with pytest.raises(TargetNotFound, match="External ID"):
        list(client.push_batches([{"Email": "a@b.c", "LastName": "x"}], "Email"))


def test_unavailable_is_retried(salesforce, sleeps):
    salesforce.inject("service_unavailable")
    client = salesforce_client(salesforce, sleeps)
    assert push(client, [contact(1)]).created == ("open-00001",)
    assert client.http.stats.retries == 1

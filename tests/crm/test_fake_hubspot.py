"""The fake HubSpot speaks the batch upsert contract of crm-apis.md section 3, over raw HTTP.

Each test sends a request shaped like HubSpot's documented samples with plain httpx and checks the
status, body and headers the real API is documented to answer, so the client tests that rely on
the fake rely on the documented behaviour.
"""

import json

import httpx
import pytest

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
ARCHIVE = "/crm/v3/objects/contacts/batch/archive"
PROPERTIES = "/crm/v3/properties/contacts"
PROPERTY = {
    "name": "tiktok_bio",
    "label": "TikTok bio",
    "type": "string",
    "fieldType": "textarea",
    "groupName": "contactinformation",
}


def contact_input(open_id: str, **properties: object) -> dict:
    props = {"tiktok_open_id": open_id, "tiktok_display_name": "Priya"} | properties
    return {"idProperty": "tiktok_open_id", "id": open_id, "properties": props}


@pytest.fixture
def api(hubspot):
    with httpx.Client(
        base_url=hubspot.base_url, headers={"Authorization": f"Bearer {hubspot.token}"}
    ) as client:
        yield client


def test_upsert_creates_then_updates_by_the_unique_property(api, hubspot):
    first = api.post(UPSERT, json={"inputs": [contact_input("a"), contact_input("b")]})
    again = api.post(UPSERT, json={"inputs": [contact_input("a", tiktok_display_name="P2")]})
    assert first.status_code == again.status_code == 200
    assert [r["new"] for r in first.json()["results"]] == [True, True]
    assert again.json()["results"][0]["new"] is False
    body = again.json()
    assert {"status", "results", "startedAt", "completedAt"} <= body.keys()
    assert len(hubspot.records()) == 2
    assert hubspot.find("contacts", "tiktok_open_id", "a")["tiktok_display_name"] == "P2"


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),  # no Authorization header
        ({"Authorization": "Basic dXNlcjpwYXNz"}, {}),  # Basic auth
        ({"Authorization": "Bearer wrong-token"}, {}),  # a token HubSpot does not know
        ({}, {"hapikey": "legacy-key"}),  # API keys stopped working in 2022
    ],
)
def test_anything_but_the_bearer_token_is_401(hubspot, headers, params):
    response = httpx.post(
        hubspot.base_url + UPSERT,
        json={"inputs": [contact_input("a")]},
        headers=headers,
        params=params,
    )
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    assert hubspot.records() == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": [contact_input(str(i)) for i in range(101)]}, "exceeds the limit of 100"),
        ({"inputs": [contact_input("a", tiktok_followers=125000)]}, "must be a string"),
        ({"inputs": [{"id": "a", "properties": {}}]}, "is not a unique property"),
        ({"inputs": [contact_input("a") | {"id": 5}]}, "id must be a string"),
        ({"inputs": [contact_input("a"), contact_input("a")]}, "Duplicate IDs"),
        ({"records": []}, "'inputs' array"),
    ],
)
def test_a_malformed_batch_is_refused_whole_with_400(api, hubspot, body, message):
    response = api.post(UPSERT, json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["category"] == "VALIDATION_ERROR" and message in error["message"]
    assert error["correlationId"]
    assert hubspot.records() == {}


def test_a_failing_record_gives_207_and_the_others_are_written(api, hubspot):
    hubspot.fail_record("b", "Property values were not valid: tiktok_bio")
    inputs = [contact_input(k) | {"objectWriteTraceId": k} for k in ("a", "b", "c")]
    response = api.post(UPSERT, json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert body["numErrors"] == 1
    [error] = body["errors"]
    assert error["context"] == {"ids": ["b"]}
    assert (error["category"], error["status"]) == ("VALIDATION_ERROR", "400")
    assert {"status", "category", "message", "errors", "context", "links"} <= error.keys()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["a", "c"]
    assert len(hubspot.records()) == 2


def test_every_answer_carries_the_rate_limit_headers(api, hubspot):
    hubspot.window_max = 3
    response = api.post(UPSERT, json={"inputs": [contact_input("a")]})
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert response.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert response.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(hubspot.daily_limit - 1)


def test_the_ten_second_window_answers_429_until_it_rolls(api, hubspot, clock):
    hubspot.window_max, hubspot.retry_after = 2, "10000"
    statuses = [api.post(UPSERT, json={"inputs": [contact_input("a")]}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    limited = statuses[2].json()
    assert limited["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited["errorType"] == "RATE_LIMIT"
    assert {"message", "correlationId", "category"} <= limited.keys()  # the contract's Error
    assert statuses[2].headers["Retry-After"] == "10000"
    clock.advance(10.0)
    assert api.post(UPSERT, json={"inputs": [contact_input("a")]}).status_code == 200


def test_the_daily_allowance_answers_429_with_policy_daily(api, hubspot):
    hubspot.daily_limit = 1
    api.post(UPSERT, json={"inputs": [contact_input("a")]})
    response = api.post(UPSERT, json={"inputs": [contact_input("b")]})
    assert response.status_code == 429
    assert response.json()["policyName"] == "DAILY"
    assert response.json()["message"] == "You have reached your daily limit."
    assert response.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


@pytest.mark.parametrize(
    ("fault", "status"),
    [("unauthorized", 401), ("forbidden", 403), ("server_error", 500), ("bad_gateway", 502)],
)
def test_injected_faults_answer_once_then_the_api_recovers(api, hubspot, fault, status):
    hubspot.inject(fault)
    assert api.post(UPSERT, json={"inputs": [contact_input("a")]}).status_code == status
    assert api.post(UPSERT, json={"inputs": [contact_input("a")]}).status_code == 200
    assert hubspot.request_count == 2


def test_unknown_object_types_are_404(api):
    response = api.post("/crm/v3/objects/widgets/batch/upsert", json={"inputs": []})
    assert response.status_code == 404
    assert response.json()["category"] == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "text/plain"}, 415),  # the contract answers 415 to a non-JSON body
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json; charset=utf-8"}, 200),
    ],
)
def test_a_body_that_is_not_json_is_415(api, hubspot, headers, status):
    content = json.dumps({"inputs": [contact_input("a")]})
    response = api.post(UPSERT, content=content, headers=headers)
    assert response.status_code == status
    if status == 415:
        assert {"message", "correlationId", "category"} <= response.json().keys()
        assert hubspot.records() == {}


def test_a_numeric_object_write_trace_id_is_refused(api, hubspot):
    response = api.post(UPSERT, json={"inputs": [contact_input("a") | {"objectWriteTraceId": 7}]})
    assert response.status_code == 400
    assert "objectWriteTraceId must be a string" in response.json()["message"]


@pytest.mark.parametrize("status", ["CANCELED", "PENDING"])
def test_a_batch_can_be_answered_canceled_or_pending_writing_nothing(api, hubspot, status):
    hubspot.answer_batches_with(status)
    first = api.post(UPSERT, json={"inputs": [contact_input("a")]})
    assert first.status_code == 200
    assert first.json()["status"] == status and first.json()["results"] == []
    assert {"startedAt", "completedAt"} <= first.json().keys()
    assert hubspot.records() == {}
    assert api.post(UPSERT, json={"inputs": [contact_input("a")]}).json()["status"] == "COMPLETE"


def test_unattributable_errors_name_a_property_not_the_record(api, hubspot):
    hubspot.attributable_errors = False
    hubspot.echo_trace_ids = False
    hubspot.fail_record("b", "Property values were not valid", property_name="tiktok_bio")
    inputs = [contact_input(k) | {"objectWriteTraceId": k} for k in ("a", "b")]
    body = api.post(UPSERT, json={"inputs": inputs}).json()
    assert body["errors"][0]["context"] == {"invalidPropertyName": ["tiktok_bio"]}
    assert "objectWriteTraceId" not in body["results"][0]
    assert body["results"][0]["properties"]["tiktok_open_id"] == "a"


@pytest.mark.parametrize(
    ("shape", "keys"),
    [
        ("documented", {"message", "correlationId", "category", "policyName", "errorType"}),
        ("contract", {"message", "correlationId", "category"}),
    ],
)
def test_429_bodies_hold_the_contracts_required_fields(api, hubspot, shape, keys):
    hubspot.rate_limit_body = shape
    hubspot.inject("rate_limited")
    response = api.post(UPSERT, json={"inputs": [contact_input("a")]})
    assert response.status_code == 429
    assert set(response.json()) - {"status", "requestId"} == keys


def test_an_empty_429_has_no_body(api, hubspot):
    hubspot.rate_limit_body = "empty"
    hubspot.inject("daily_limit")
    response = api.post(UPSERT, json={"inputs": [contact_input("a")]})
    assert (response.status_code, response.content) == (429, b"")
    assert response.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_batch_archive_removes_records_by_hubspot_id(api, hubspot):
    results = api.post(UPSERT, json={"inputs": [contact_input("a"), contact_input("b")]}).json()
    ids = [r["id"] for r in results["results"]]
    response = api.post(ARCHIVE, json={"inputs": [{"id": ids[0]}, {"id": "999999"}]})
    assert (response.status_code, response.content) == (204, b"")
    assert list(hubspot.records()) == [ids[1]]
    assert list(hubspot.archived["contacts"]) == [ids[0]]
    assert hubspot.find("contacts", "tiktok_open_id", "a") is None


def test_properties_and_groups_are_listed_and_created(api, hubspot):
    names = {p["name"] for p in api.get(PROPERTIES).json()["results"]}
    assert {"email", "firstname", "tiktok_open_id"} <= names
    group = api.post(PROPERTIES + "/groups", json={"name": "tiktok", "label": "TikTok"})
    assert group.status_code == 201
    created = api.post(PROPERTIES, json=PROPERTY | {"groupName": "tiktok"})
    assert created.status_code == 201 and created.json()["groupName"] == "tiktok"
    again = api.post(PROPERTIES, json=PROPERTY)
    assert (again.status_code, again.json()["category"]) == (409, "OBJECT_ALREADY_EXISTS")
    assert "tiktok" in {g["name"] for g in api.get(PROPERTIES + "/groups").json()["results"]}


@pytest.mark.parametrize(
    "bad",
    [
        {"groupName": "nowhere"},  # the group must exist first
        {"type": "string", "fieldType": "number"},  # fieldType must fit the type
        {"hasUniqueValue": "yes"},
    ],
)
def test_a_bad_property_is_refused_with_400(api, bad):
    response = api.post(PROPERTIES, json=PROPERTY | {"groupName": "contactinformation"} | bad)
    assert response.status_code == 400


def test_a_new_unique_property_can_be_the_id_property(api, hubspot):
    api.post(PROPERTIES, json=PROPERTY | {"name": "tiktok_uid", "hasUniqueValue": True})
    item = {"idProperty": "tiktok_uid", "id": "u1", "properties": {"tiktok_uid": "u1"}}
    assert api.post(UPSERT, json={"inputs": [item]}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", PROPERTIES, "crm.schemas.contacts.read"),
        ("POST", PROPERTIES, "crm.schemas.contacts.write"),
        ("POST", UPSERT, "crm.objects.contacts.write"),
    ],
)
def test_a_missing_scope_is_403_naming_it(api, hubspot, method, path, scope):
    hubspot.scopes = {"crm.objects.contacts.read"}
    response = api.request(method, path, json={"inputs": []})
    assert response.status_code == 403
    body = response.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == [scope]

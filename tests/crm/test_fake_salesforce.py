"""The fake Salesforce speaks the upsert-by-external-id contract of crm-apis.md section 3.

Raw httpx requests shaped like Salesforce's documented samples: sObject Collections upsert with
per-record results in a 200, the single-record upsert with 201/200/300, array error bodies,
REQUEST_LIMIT_EXCEEDED and the Sforce-Limit-Info header.
"""

import httpx
import pytest

COLLECTION = "/services/data/v62.0/composite/sobjects/Contact/TikTok_Open_Id__c"
SINGLE = "/services/data/v62.0/sobjects/Contact/TikTok_Open_Id__c/"


def contact(open_id: str, **fields: object) -> dict:
    return {
        "attributes": {"type": "Contact"},
        "TikTok_Open_Id__c": open_id,
        "LastName": "Sharma",
    } | fields


@pytest.fixture
def api(salesforce):
    with httpx.Client(
        base_url=salesforce.base_url, headers={"Authorization": f"Bearer {salesforce.token}"}
    ) as client:
        yield client


def test_collection_upsert_answers_one_result_per_record_in_order(api, salesforce):
    first = api.patch(
        COLLECTION, json={"allOrNone": False, "records": [contact("a"), contact("b")]}
    )
    again = api.patch(
        COLLECTION, json={"allOrNone": False, "records": [contact("b"), contact("c")]}
    )
    assert first.status_code == again.status_code == 200
    assert [(r["success"], r["created"]) for r in first.json()] == [(True, True), (True, True)]
    assert [r["created"] for r in again.json()] == [False, True]
    assert again.json()[0]["id"] == first.json()[1]["id"]
    assert len(salesforce.records()) == 3


def test_a_partial_failure_is_a_200_with_success_false(api, salesforce):
    salesforce.fail_record("b", "INVALID_EMAIL_ADDRESS", "Email: invalid email address", ["Email"])
    records = [contact("a"), contact("b"), contact("c", LastName=None)]
    response = api.patch(COLLECTION, json={"allOrNone": False, "records": records})
    assert response.status_code == 200
    results = response.json()
    assert results[0]["success"] is True
    assert results[1]["errors"] == [
        {
            "statusCode": "INVALID_EMAIL_ADDRESS",
            "message": "Email: invalid email address",
            "fields": ["Email"],
        }
    ]
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert len(salesforce.records()) == 1


def test_all_or_none_rolls_back_the_whole_collection(api, salesforce):
    salesforce.fail_record("b", "INVALID_EMAIL_ADDRESS", "bad")
    response = api.patch(
        COLLECTION, json={"allOrNone": True, "records": [contact("a"), contact("b")]}
    )
    codes = [r["errors"][0]["statusCode"] for r in response.json()]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_EMAIL_ADDRESS"]
    assert salesforce.records() == {}


def test_more_than_200_records_is_a_400_with_an_array_body(api):
    response = api.patch(COLLECTION, json={"records": [contact(str(i)) for i in range(201)]})
    assert response.status_code == 400
    assert isinstance(response.json(), list) and response.json()[0]["errorCode"]


def test_single_upsert_creates_201_updates_200_and_duplicates_300(api, salesforce):
    created = api.patch(SINGLE + "a", json={"LastName": "Sharma"})
    updated = api.patch(SINGLE + "a", json={"LastName": "Sharma-Lee"})
    assert (created.status_code, created.json()["created"]) == (201, True)
    assert (updated.status_code, updated.json()["created"]) == (200, False)
    salesforce.plant_duplicate("Contact", "TikTok_Open_Id__c", "dup")
    duplicate = api.patch(SINGLE + "dup", json={"LastName": "X"})
    assert duplicate.status_code == 300
    assert len(duplicate.json()) == 2 and all(
        "/sobjects/Contact/003" in u for u in duplicate.json()
    )


def test_a_duplicate_external_id_fails_its_record_in_a_collection(api, salesforce):
    salesforce.plant_duplicate("Contact", "TikTok_Open_Id__c", "dup")
    response = api.patch(COLLECTION, json={"records": [contact("dup"), contact("ok")]})
    assert response.json()[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert response.json()[1]["success"] is True
    salesforce.duplicates_as_300 = True
    assert api.patch(COLLECTION, json={"records": [contact("dup")]}).status_code == 300


def test_the_api_allocation_runs_out_with_403_request_limit_exceeded(api, salesforce):
    salesforce.api_limit = 2
    statuses = [api.patch(COLLECTION, json={"records": [contact("a")]}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 403]
    assert statuses[2].json() == [
        {
            "message": "TotalRequests Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
            "fields": [],
        }
    ]
    assert [r.headers["Sforce-Limit-Info"] for r in statuses] == [
        "api-usage=1/2",
        "api-usage=2/2",
        "api-usage=2/2",
    ]


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        (COLLECTION, {"Authorization": "Bearer expired"}, 401, "INVALID_SESSION_ID"),
        (COLLECTION.replace("TikTok_Open_Id__c", "Email"), {}, 404, "NOT_FOUND"),
        (COLLECTION.replace("v62.0", "v45.0"), {}, 404, "NOT_FOUND"),  # before Collections upsert
    ],
)
def test_request_errors_are_json_arrays(api, path, headers, status, code):
    response = api.patch(path, json={"records": [contact("a")]}, headers=headers)
    assert response.status_code == status
    assert response.json()[0]["errorCode"] == code
    assert "Sforce-Limit-Info" in response.headers


DELETE = "/services/data/v62.0/composite/sobjects"
DESCRIBE = "/services/data/v62.0/sobjects/Contact/describe"


def test_a_failed_upsert_result_holds_every_upsert_result_field(api, salesforce):
    salesforce.fail_record("b", "INVALID_EMAIL_ADDRESS", "bad")
    body = api.patch(COLLECTION, json={"records": [contact("b")]}).json()
    assert set(body[0]) == {"id", "success", "errors", "created"}
    assert set(body[0]["errors"][0]) == {"statusCode", "message", "fields"}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"content": b'{"records": []}', "headers": {"Content-Type": "text/plain"}}, 415, None),
        ({"json": {"allOrNone": "yes", "records": [contact("a")]}}, 400, "JSON_PARSER_ERROR"),
    ],
)
def test_a_collection_body_must_be_json_with_a_boolean_all_or_none(
    api, salesforce, request_kwargs, status, code
):
    response = api.patch(COLLECTION, **request_kwargs)
    assert response.status_code == status
    assert isinstance(response.json(), list)  # an array of errors, as every Salesforce error
    assert code is None or response.json()[0]["errorCode"] == code
    assert salesforce.records() == {}


def test_collection_delete_answers_one_delete_result_per_id_in_order(api, salesforce):
    ids = [r["id"] for r in api.patch(COLLECTION, json={"records": [contact("a")]}).json()]
    response = api.delete(
        DELETE, params={"ids": f"{ids[0]},003000000000000999", "allOrNone": "false"}
    )
    assert response.status_code == 200
    first, unknown = response.json()
    assert first == {"id": ids[0], "success": True, "errors": []}
    assert (unknown["success"], unknown["errors"][0]["statusCode"]) == (False, "ENTITY_IS_DELETED")
    assert salesforce.records() == {} and list(salesforce.deleted["Contact"]) == ids


def test_delete_by_external_id_is_204_then_404(api, salesforce):
    api.patch(COLLECTION, json={"records": [contact("a")]})
    assert api.delete(SINGLE + "a").status_code == 204
    gone = api.delete(SINGLE + "a")
    assert (gone.status_code, gone.json()[0]["errorCode"]) == (404, "NOT_FOUND")


def test_describe_lists_fields_with_external_id_and_unique(api):
    body = api.get(DESCRIBE).json()
    fields = {f["name"]: f for f in body["fields"]}
    assert body["name"] == "Contact"
    assert (fields["TikTok_Open_Id__c"]["externalId"], fields["TikTok_Open_Id__c"]["unique"]) == (
        True,
        True,
    )
    assert fields["LastName"]["nillable"] is False and fields["Id"]["type"] == "id"
    assert api.get("/services/data/v62.0/sobjects/Widget__c/describe").status_code == 404

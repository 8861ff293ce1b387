"""A fake Salesforce REST API (upsert by external id), written from crm-apis.md sections 2 and 3.

- `PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}`: sObject
  Collections upsert of at most 200 records, `allOrNone` honoured, one UpsertResult per record in
  order inside a 200 (`success`, `created`, `errors[]` of `{statusCode, message, fields}`).
- `PATCH /services/data/vXX.X/sobjects/{SObject}/{ExternalIdField}/{value}`: one record; 201
  created, 200 updated, 300 with the matching record URLs when the id matches several records.
- Errors of the request are JSON arrays of `{message, errorCode, fields}`: 401
  INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED once `api_limit` calls were made (or injected),
  404 NOT_FOUND, 400 for a malformed body.
- `DELETE /services/data/vXX.X/composite/sobjects?ids=...&allOrNone=false`: at most 200 ids, one
  DeleteResult `{id, success, errors[]}` per id in order (ENTITY_IS_DELETED for an unknown id);
  `DELETE .../sobjects/{SObject}/{ExternalIdField}/{value}`: 204, or 404 when nothing matches.
- `GET /services/data/vXX.X/sobjects/{SObject}/describe`: the sObject's fields with `name`,
  `type`, `externalId`, `unique`, `nillable`, `createable`, `updateable`, `length`.
- A PATCH whose body is not `application/json` is 415; `allOrNone` must be a boolean.
- Every answer carries `Sforce-Limit-Info: api-usage=used/limit`.

`plant_duplicate` makes an external id match two records: the collection answers a per-record
DUPLICATE_EXTERNAL_ID error, or a whole 300 with `duplicates_as_300`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from simulators.crm_fakes.server import LOOPBACK, CrmFake, json_reply, parse_json
from simulators.tiktok.responses import Reply, SimRequest

MAX_RECORDS = 200
MIN_VERSION = 46.0
DEFAULT_TOKEN = "fake-salesforce-token"
_COLLECTION = re.compile(r"^/services/data/v(\d+\.\d)/composite/sobjects/(\w+)/(\w+)$")
_SINGLE = re.compile(r"^/services/data/v(\d+\.\d)/sobjects/(\w+)/(\w+)/([^/]+)$")
_DESCRIBE = re.compile(r"^/services/data/v(\d+\.\d)/sobjects/(\w+)/describe$")
_DELETE_IDS = re.compile(r"^/services/data/v(\d+\.\d)/composite/sobjects$")
# Standard Contact fields every org has (a few of them; describe lists these and the custom ones).
STANDARD_FIELDS = {
    "Contact": {"Id": "id", "FirstName": "string", "LastName": "string", "Email": "email"},
}


@dataclass(frozen=True)
class SObjectSpec:
    """An sObject the fake knows: its external id fields and the fields an insert needs."""

    external_ids: frozenset[str]
    required: frozenset[str] = frozenset()
    # Custom fields that are not external ids: name -> describe type (string, double, ...).
    fields: tuple[tuple[str, str], ...] = ()
    # External ids not also marked Unique (upserting by them needs "View All Data").
    not_unique: frozenset[str] = frozenset()

    def describe_fields(self, sobject: str) -> list[dict[str, Any]]:
        types = dict(STANDARD_FIELDS.get(sobject, {"Id": "id"}))
        types |= dict.fromkeys(self.required, "string") | dict(self.fields)
        types |= dict.fromkeys(self.external_ids, "string")
        return [
            {
                "name": name,
                "label": name.removesuffix("__c").replace("_", " "),
                "type": type_name,
                "externalId": name in self.external_ids,
                "unique": name in self.external_ids and name not in self.not_unique,
                "nillable": name not in self.required and name != "Id",
                "createable": name != "Id",
                "updateable": name != "Id",
                "custom": name.endswith("__c"),
                "length": 255 if type_name == "string" else 0,
            }
            for name, type_name in sorted(types.items())
        ]


def _errors(status: int, code: str, message: str, fields: list[str] | None = None) -> Reply:
    return json_reply(status, [{"message": message, "errorCode": code, "fields": fields or []}])


class FakeSalesforce(CrmFake):
    faults = frozenset(
        {"request_limit_exceeded", "unauthorized", "server_error", "service_unavailable"}
    )

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        sobjects: dict[str, SObjectSpec] | None = None,
        api_limit: int = 100_000,
        duplicates_as_300: bool = False,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.sobjects = sobjects or {
            "Contact": SObjectSpec(frozenset({"TikTok_Open_Id__c"}), frozenset({"LastName"}))
        }
        self.api_limit = api_limit
        self.api_used = 0
        self.duplicates_as_300 = duplicates_as_300
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {}
        self._failures: dict[str, tuple[str, str, list[str]]] = {}
        self._next_id = 1

    # --- levers for tests ---

    def fail_record(
        self, external_id: str, status_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        """Records with this external id fail alone with `status_code` until `clear_failures`."""
        with self.lock:
            self._failures[external_id] = (status_code, message, fields or [])

    def clear_failures(self) -> None:
        with self.lock:
            self._failures.clear()

    def plant_duplicate(self, sobject: str, field_name: str, value: str) -> None:
        """Two stored records share this external id (a field not marked Unique)."""
        with self.lock:
            for _ in range(2):
                self._insert(sobject, {field_name: value})

    def records(self, sobject: str = "Contact") -> dict[str, dict[str, Any]]:
        with self.lock:
            return {i: dict(r) for i, r in self._records.get(sobject, {}).items()}

    def matching(self, sobject: str, field_name: str, value: str) -> list[str]:
        with self.lock:
            stored = self._records.get(sobject, {})
            return [i for i, record in stored.items() if record.get(field_name) == value]

    # --- the API ---

    def answer(self, request: SimRequest, fault: str | None) -> Reply:
        reply = self._route(request, fault)
        usage = ("Sforce-Limit-Info", f"api-usage={self.api_used}/{self.api_limit}")
        return Reply(reply.status, reply.body, reply.content_type, (*reply.headers, usage))

    def _route(self, request: SimRequest, fault: str | None) -> Reply:
        if (
            request.headers.get("authorization") != f"Bearer {self.token}"
            or fault == "unauthorized"
        ):
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault == "request_limit_exceeded" or self.api_used >= self.api_limit:
            return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.api_used += 1
        if fault == "server_error":
            return _errors(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
        if fault == "service_unavailable":
            return _errors(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable.")
        describe = _DESCRIBE.match(request.path)
        if describe and request.method == "GET":
            return self._describe(describe[2])
        delete_ids = _DELETE_IDS.match(request.path)
        if delete_ids and request.method == "DELETE":
            return self._delete_ids(request)
        collection, single = _COLLECTION.match(request.path), _SINGLE.match(request.path)
        route = collection or single
        allowed = ("PATCH", "DELETE") if single else ("PATCH",)
        if request.method not in allowed or route is None or float(route[1]) < MIN_VERSION:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        sobject, id_field = route[2], route[3]
        spec = self.sobjects.get(sobject)
        if spec is None or id_field not in spec.external_ids:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "DELETE":
            return self._delete_one(sobject, id_field, unquote(route[4]))
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return _errors(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"Content type '{media_type}' is not supported; send application/json",
            )
        body = parse_json(request.body)
        if collection:
            return self._collection(route[1], sobject, id_field, body)
        return self._single(route[1], sobject, id_field, unquote(route[4]), body)

    def _collection(self, version: str, sobject: str, id_field: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return _errors(400, "JSON_PARSER_ERROR", "The request body needs a records array")
        records = body["records"]
        if not isinstance(body.get("allOrNone", False), bool):
            return _errors(400, "JSON_PARSER_ERROR", "allOrNone must be true or false")
        if len(records) > MAX_RECORDS:
            return _errors(
                400,
                "EXCEEDED_ID_LIMIT",
                f"{len(records)} records: a collection takes at most {MAX_RECORDS}",
            )
        if any(
            not isinstance(r, dict) or not isinstance(r.get("attributes"), dict) for r in records
        ):
            return _errors(400, "JSON_PARSER_ERROR", "Every record needs attributes.type")
        values = [r.get(id_field) for r in records]
        if self.duplicates_as_300 and any(
            len(self.matching(sobject, id_field, str(v))) > 1 for v in values if v is not None
        ):
            return json_reply(300, self._urls(version, sobject, id_field, values))
        outcomes = [self._check(sobject, id_field, record) for record in records]
        if body.get("allOrNone") is True and any(o is not None for o in outcomes):
            rolled_back = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid "
                "and the request was using AllOrNone header",
                "fields": [],
            }
            return json_reply(
                200,
                [
                    {"id": None, "success": False, "errors": [o or rolled_back], "created": False}
                    for o in outcomes
                ],
            )
        results = []
        for record, problem in zip(records, outcomes, strict=True):
            if problem is not None:
                results.append(
                    {"id": None, "success": False, "errors": [problem], "created": False}
                )
                continue
            record_id, created = self._write(sobject, id_field, record)
            results.append({"id": record_id, "success": True, "errors": [], "created": created})
        return json_reply(200, results)

    def _single(self, version: str, sobject: str, id_field: str, value: str, body: Any) -> Reply:
        if not isinstance(body, dict):
            return _errors(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        matches = self.matching(sobject, id_field, value)
        if len(matches) > 1:
            return json_reply(
                300, [f"/services/data/v{version}/sobjects/{sobject}/{i}" for i in matches]
            )
        record = body | {id_field: value, "attributes": {"type": sobject}}
        problem = self._check(sobject, id_field, record)
        if problem is not None:
            return _errors(400, problem["statusCode"], problem["message"], problem["fields"])
        record_id, created = self._write(sobject, id_field, record)
        payload = {"id": record_id, "errors": [], "success": True, "created": created}
        return json_reply(201 if created else 200, payload)

    def _describe(self, sobject: str) -> Reply:
        spec = self.sobjects.get(sobject)
        if spec is None:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        body = {
            "name": sobject,
            "label": sobject,
            "custom": sobject.endswith("__c"),
            "createable": True,
            "updateable": True,
            "deletable": True,
            "fields": spec.describe_fields(sobject),
        }
        return json_reply(200, body)

    def _delete_ids(self, request: SimRequest) -> Reply:
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            return _errors(400, "MALFORMED_QUERY", "ids is required")
        if len(ids) > MAX_RECORDS:
            return _errors(400, "EXCEEDED_ID_LIMIT", f"at most {MAX_RECORDS} ids per request")
        results = []
        for record_id in ids:
            owner = next((o for o, stored in self._records.items() if record_id in stored), None)
            if owner is None:
                error = {
                    "statusCode": "ENTITY_IS_DELETED",
                    "message": "entity is deleted",
                    "fields": [],
                }
                results.append({"id": record_id, "success": False, "errors": [error]})
                continue
            self.deleted.setdefault(owner, {})[record_id] = self._records[owner].pop(record_id)
            results.append({"id": record_id, "success": True, "errors": []})
        return json_reply(200, results)

    def _delete_one(self, sobject: str, id_field: str, value: str) -> Reply:
        matches = self.matching(sobject, id_field, value)
        if not matches:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if len(matches) > 1:
            return json_reply(300, [f"/sobjects/{sobject}/{i}" for i in matches])
        self.deleted.setdefault(sobject, {})[matches[0]] = self._records[sobject].pop(matches[0])
        return Reply(204, b"", None)

    def _check(self, sobject: str, id_field: str, record: dict[str, Any]) -> dict | None:
        def problem(code: str, message: str, fields: list[str] | None = None) -> dict:
            return {"statusCode": code, "message": message, "fields": fields or []}

        value = record.get(id_field)
        if record["attributes"].get("type") != sobject:
            return problem("INVALID_TYPE", f"every record must be a {sobject}")
        if "Id" in record:
            return problem("INVALID_FIELD", "Id is not allowed in an upsert by external id", ["Id"])
        if value in (None, ""):
            return problem(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{id_field}]", [id_field]
            )
        if str(value) in self._failures:
            code, message, fields = self._failures[str(value)]
            return problem(code, message, fields)
        matches = self.matching(sobject, id_field, str(value))
        if len(matches) > 1:
            return problem(
                "DUPLICATE_EXTERNAL_ID",
                f"{id_field}: more than one record found for external id field: {matches}",
                [id_field],
            )
        missing = sorted(f for f in self.sobjects[sobject].required if record.get(f) in (None, ""))
        if not matches and missing:
            return problem(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing
            )
        return None

    def _write(self, sobject: str, id_field: str, record: dict[str, Any]) -> tuple[str, bool]:
        fields = {k: v for k, v in record.items() if k != "attributes"}
        matches = self.matching(sobject, id_field, str(record[id_field]))
        if matches:
            self._records[sobject][matches[0]].update(fields)
            return matches[0], False
        return self._insert(sobject, fields), True

    def _insert(self, sobject: str, fields: dict[str, Any]) -> str:
        record_id = f"003{self._next_id:015d}"
        self._next_id += 1
        self._records.setdefault(sobject, {})[record_id] = dict(fields)
        return record_id

    def _urls(self, version: str, sobject: str, id_field: str, values: list[Any]) -> list[str]:
        ids = [i for v in values if v is not None for i in self.matching(sobject, id_field, str(v))]
        return [f"/services/data/v{version}/sobjects/{sobject}/{i}" for i in ids]

"""A fake HubSpot CRM v3, written from crm-apis.md sections 1 and 3 and HubSpot's contract.

- `POST /crm/v3/objects/{objectType}/batch/upsert`: at most 100 inputs; 400 VALIDATION_ERROR for
  a non-string property value, id or objectWriteTraceId, an `idProperty` that is not a unique
  property, or the same id twice; 415 for a body that is not `application/json`. Records named
  by `fail_record` fail alone: a 207 with `numErrors` and contract-shaped `errors[]` (`status` is
  an HTTP status); `attributable_errors=False` leaves the record's id out of their `context`, and
  `echo_trace_ids=False` leaves `objectWriteTraceId` out of the results. `answer_batches_with`
  makes the next answers CANCELED or PENDING (nothing written, no results).
- `POST .../batch/archive`: `{"inputs": [{"id"}]}` by HubSpot id, 204.
- The Properties API v3 (`hubspot_properties`), for `crm setup`.
- `scopes` (None: all granted) makes calls without `crm.objects.<type>.write` or
  `crm.schemas.<type>.read|write` answer 403 MISSING_SCOPES naming the scope.

Every answer carries the `X-HubSpot-RateLimit-*` headers, counted against a 10-second window and a
daily allowance on the injected clock; going over answers 429 (and `Retry-After` when `retry_after`
is set). `rate_limit_body` shapes the 429 body: "documented" (the docs' example with `policyName`,
plus the contract's `category`), "contract" (only `message`, `correlationId`, `category`) or
"empty" (no body at all). Error answers always hold the contract's `message`, `correlationId`
and `category`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from simulators.crm_fakes.hubspot_properties import PropertyCatalog, PropertyRefusal
from simulators.crm_fakes.server import LOOPBACK, CrmFake, json_reply, parse_json
from simulators.tiktok.responses import Reply, SimRequest

MAX_INPUTS = 100
TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"
DEFAULT_TOKEN = "fake-hubspot-token"
_ROUTE = re.compile(r"^/crm/v3/objects/([A-Za-z0-9_-]+)/batch/(upsert|archive)$")
_PROPERTIES = re.compile(r"^/crm/v3/properties/([A-Za-z0-9_-]+)(/groups)?$")
BATCH_STATUSES = ("CANCELED", "COMPLETE", "PENDING", "PROCESSING")
RATE_LIMIT_BODIES = ("documented", "contract", "empty")
# The HTTP status each error category stands for in a 207's errors[].status.
_CATEGORY_STATUS = {"RATE_LIMITS": "429", "MISSING_SCOPES": "403", "INTERNAL_ERROR": "500"}
BAD_GATEWAY_HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class _Refusal(Exception):
    def __init__(self, message: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.message = message
        self.category = category


class FakeHubSpot(CrmFake):
    faults = frozenset(
        {"rate_limited", "daily_limit", "unauthorized", "forbidden", "server_error", "bad_gateway"}
    )

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        unique_properties: dict[str, set[str]] | None = None,
        window_max: int = 190,
        window_ms: int = 10_000,
        daily_limit: int = 1_000_000,
        retry_after: str | None = None,
        rate_limit_body: str = "documented",
        attributable_errors: bool = True,
        echo_trace_ids: bool = True,
        strict_properties: bool = False,
        scopes: set[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if rate_limit_body not in RATE_LIMIT_BODIES:
            raise ValueError(f"rate_limit_body must be one of {RATE_LIMIT_BODIES}")
        self.token = token
        # Object types and their unique properties besides the standard ones (email for contacts).
        self.catalog = PropertyCatalog.new_portal(
            unique_properties or {"contacts": {"tiktok_open_id"}}
        )
        self.rate_limit_body = rate_limit_body
        self.attributable_errors = attributable_errors
        self.echo_trace_ids = echo_trace_ids
        # True: a property the portal does not have refuses the batch, as HubSpot does.
        self.strict_properties = strict_properties
        self.scopes = scopes
        self.archived: dict[str, dict[str, dict[str, str]]] = {}
        self._batch_statuses: deque[str] = deque()
        self.window_max = window_max
        self.window_ms = window_ms
        self.daily_limit = daily_limit
        self.retry_after = retry_after  # the Retry-After value sent with 429s, e.g. "10" or "10000"
        self.clock = clock
        self._window: deque[float] = deque()
        self._daily_used = 0
        self._objects: dict[str, dict[str, dict[str, str]]] = {}
        self._index: dict[tuple[str, str, str], str] = {}
        self._stamps: dict[str, tuple[str, str]] = {}
        self._failures: dict[str, tuple[str, str, str | None]] = {}
        self._next_id = 1000

    # --- levers for tests ---

    def fail_record(
        self,
        record_id: str,
        message: str,
        category: str = "VALIDATION_ERROR",
        property_name: str | None = None,
    ) -> None:
        """Inputs with this id fail alone (207) until `clear_failures`."""
        with self.lock:
            self._failures[record_id] = (message, category, property_name)

    def answer_batches_with(self, status: str, count: int = 1) -> None:
        """The next `count` upserts answer 200 with this batch status, writing nothing."""
        if status not in BATCH_STATUSES:
            raise ValueError(f"unknown batch status {status!r}; expected one of {BATCH_STATUSES}")
        with self.lock:
            self._batch_statuses.extend([status] * count)

    def add_property(
        self, object_type: str, name: str, type_name: str = "string", *, unique: bool = False
    ) -> None:
        """A property made by hand in the portal (in the object type's standard group)."""
        with self.lock:
            group = next(iter(self.catalog.groups[object_type]))
            self.catalog.add(object_type, name, type_name, group=group, unique=unique)

    def properties(self, object_type: str = "contacts") -> dict[str, dict[str, Any]]:
        with self.lock:
            return {n: dict(p) for n, p in self.catalog.properties[object_type].items()}

    def groups(self, object_type: str = "contacts") -> set[str]:
        with self.lock:
            return set(self.catalog.groups[object_type])

    def clear_failures(self) -> None:
        with self.lock:
            self._failures.clear()

    def records(self, object_type: str = "contacts") -> dict[str, dict[str, str]]:
        """Stored records by HubSpot id: a copy of their properties."""
        with self.lock:
            return {i: dict(p) for i, p in self._objects.get(object_type, {}).items()}

    def find(self, object_type: str, prop: str, value: str) -> dict[str, str] | None:
        with self.lock:
            record_id = self._index.get((object_type, prop, value))
            return dict(self._objects[object_type][record_id]) if record_id else None

    # --- the API ---

    @property
    def unique_properties(self) -> dict[str, set[str]]:
        return {ot: self.catalog.unique(ot) for ot in self.catalog.properties}

    def answer(self, request: SimRequest, fault: str | None) -> Reply:
        objects, properties = _ROUTE.match(request.path), _PROPERTIES.match(request.path)
        if not (objects and request.method == "POST") and not (
            properties and request.method in ("GET", "POST")
        ):
            return self._error(404, "Unable to route the request", "OBJECT_NOT_FOUND")
        if not self._authorized(request):
            return self._error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication (Bearer token).",
                "INVALID_AUTHENTICATION",
            )
        now = self.clock()
        limited = self._over_limit(now, fault)
        if limited:
            return limited
        if fault == "unauthorized":
            return self._error(
                401, "The OAuth token used to make this call expired.", "EXPIRED_AUTHENTICATION"
            )
        if fault == "server_error":
            return self._error(500, "internal error", "INTERNAL_ERROR")
        if fault == "bad_gateway":
            return Reply(502, BAD_GATEWAY_HTML, "text/html", self._limit_headers())
        route = objects or properties
        assert route is not None
        object_type = route[1]
        if object_type not in self.catalog.properties:
            return self._error(
                404, f"Unable to infer object type from: {object_type}", "OBJECT_NOT_FOUND"
            )
        if objects:
            scope = f"crm.objects.{object_type}.write"
        else:
            scope = f"crm.schemas.{object_type}.{'read' if request.method == 'GET' else 'write'}"
        if fault == "forbidden" or (self.scopes is not None and scope not in self.scopes):
            return self._missing_scope(scope)
        if request.method == "POST" and not _is_json(request):
            return self._error(
                415,
                f"Content type '{request.headers.get('content-type', '')}' is not supported; "
                "send application/json",
                "UNSUPPORTED_MEDIA_TYPE",
            )
        if properties:
            return self._properties(request, object_type, groups=bool(properties[2]))
        if objects and objects[2] == "archive":
            return self._archive(object_type, parse_json(request.body))
        try:
            inputs = self._validate(object_type, parse_json(request.body))
        except _Refusal as refusal:
            return self._error(400, refusal.message, refusal.category)
        if self._batch_statuses:
            status = self._batch_statuses.popleft()
            if status != "COMPLETE":
                return self._unfinished(status)
        return self._upsert(object_type, inputs)

    def _properties(self, request: SimRequest, object_type: str, groups: bool) -> Reply:
        catalog = self.catalog
        if request.method == "GET":
            found = catalog.groups if groups else catalog.properties
            results = list(found[object_type].values())
            return json_reply(200, {"results": results}, self._limit_headers())
        body = parse_json(request.body)
        try:
            if groups:
                created = catalog.create_group(object_type, body)
            else:
                created = catalog.create_property(object_type, body)
        except PropertyRefusal as refusal:
            return self._error(refusal.status, refusal.message, refusal.category)
        return json_reply(201, created, self._limit_headers())

    def _archive(self, object_type: str, body: Any) -> Reply:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(
            isinstance(item, dict) and isinstance(item.get("id"), str) for item in inputs
        ):
            return self._error(
                400, "Invalid input JSON: inputs need string ids", "VALIDATION_ERROR"
            )
        if len(inputs) > MAX_INPUTS:
            return self._error(
                400,
                f"Batch input size {len(inputs)} exceeds the limit of {MAX_INPUTS}",
                "VALIDATION_ERROR",
            )
        objects = self._objects.get(object_type, {})
        for item in inputs:
            stored = objects.pop(item["id"], None)
            if stored is None:
                continue  # archiving an unknown or archived id is not an error: still 204
            self.archived.setdefault(object_type, {})[item["id"]] = stored
            for index_key in [k for k, v in self._index.items() if v == item["id"]]:
                del self._index[index_key]
        return Reply(204, b"", None, self._limit_headers())

    def _unfinished(self, status: str) -> Reply:
        started = _iso_now()
        body = {"status": status, "results": [], "startedAt": started, "completedAt": started}
        return json_reply(200, body, self._limit_headers())

    def _missing_scope(self, scope: str) -> Reply:
        body = {
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "correlationId": str(uuid.uuid4()),
            "category": "MISSING_SCOPES",
            "errors": [
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [scope]},
                }
            ],
            "links": {},
        }
        return json_reply(403, body, self._limit_headers())

    def _authorized(self, request: SimRequest) -> bool:
        header = request.headers.get("authorization", "")
        return "hapikey" not in request.query and header == f"Bearer {self.token}"

    def _over_limit(self, now: float, fault: str | None) -> Reply | None:
        window_s = self.window_ms / 1000
        while self._window and self._window[0] <= now - window_s:
            self._window.popleft()
        policy = None
        if fault == "daily_limit" or self._daily_used >= self.daily_limit:
            policy = DAILY
        elif fault == "rate_limited" or len(self._window) >= self.window_max:
            policy = TEN_SECONDLY
        if policy is None:
            self._window.append(now)
            self._daily_used += 1
            return None
        message = (
            "You have reached your daily limit."
            if policy == DAILY
            else "You have reached your ten_secondly_rolling limit."
        )
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": "RATE_LIMITS",
        }
        if self.rate_limit_body == "documented":
            body |= {
                "errorType": "RATE_LIMIT",
                "policyName": policy,
                "requestId": str(uuid.uuid4()),
            }
        headers = self._limit_headers(daily_spent=policy == DAILY)
        if self.retry_after is not None:
            headers += (("Retry-After", self.retry_after),)
        if self.rate_limit_body == "empty":
            return Reply(429, b"", None, headers)
        return json_reply(429, body, headers)

    def _limit_headers(self, daily_spent: bool = False) -> tuple[tuple[str, str], ...]:
        daily_left = 0 if daily_spent else max(self.daily_limit - self._daily_used, 0)
        return (
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(self.window_ms)),
            ("X-HubSpot-RateLimit-Max", str(self.window_max)),
            ("X-HubSpot-RateLimit-Remaining", str(max(self.window_max - len(self._window), 0))),
            ("X-HubSpot-RateLimit-Daily", str(self.daily_limit)),
            ("X-HubSpot-RateLimit-Daily-Remaining", str(daily_left)),
        )

    def _error(self, status: int, message: str, category: str) -> Reply:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }
        return json_reply(status, body, self._limit_headers())

    def _validate(self, object_type: str, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _Refusal("Invalid input JSON: the body needs an 'inputs' array")
        inputs = body["inputs"]
        if len(inputs) > MAX_INPUTS:
            raise _Refusal(f"Batch input size {len(inputs)} exceeds the limit of {MAX_INPUTS}")
        seen: set[str] = set()
        for position, item in enumerate(inputs):
            where = f"inputs[{position}]"
            if not isinstance(item, dict):
                raise _Refusal(f"{where} is not an object")
            record_id, properties = item.get("id"), item.get("properties")
            if not isinstance(record_id, str):
                raise _Refusal(f"{where}.id must be a string")
            if not isinstance(properties, dict):
                raise _Refusal(f"{where}.properties must be an object")
            for name, value in properties.items():
                if not isinstance(value, str):
                    raise _Refusal(
                        f"Property values were not valid: {name} must be a string, "
                        f"got {type(value).__name__} at {where}"
                    )
            trace = item.get("objectWriteTraceId")
            if trace is not None and not isinstance(trace, str):
                raise _Refusal(f"{where}.objectWriteTraceId must be a string")
            if self.strict_properties:
                unknown = sorted(set(properties) - set(self.catalog.properties[object_type]))
                if unknown:
                    raise _Refusal(
                        f"Property values were not valid: property {unknown[0]!r} does not exist"
                    )
            id_property = item.get("idProperty")
            if id_property not in self.catalog.unique(object_type):
                raise _Refusal(f"{where}.idProperty {id_property!r} is not a unique property")
            if properties.get(id_property, record_id) != record_id:
                raise _Refusal(f"{where}: properties.{id_property} differs from id")
            if record_id in seen:
                raise _Refusal(f"Duplicate IDs found in batch input: {record_id}")
            seen.add(record_id)
        return inputs

    def _upsert(self, object_type: str, inputs: list[dict[str, Any]]) -> Reply:
        started = _iso_now()
        results, errors = [], []
        objects = self._objects.setdefault(object_type, {})
        for item in inputs:
            record_id, id_property = item["id"], item["idProperty"]
            trace = item.get("objectWriteTraceId")
            if record_id in self._failures:
                message, category, property_name = self._failures[record_id]
                context: dict[str, list[str]] = {"ids": [record_id]}
                if not self.attributable_errors:
                    # As in the contract's example: the context names the property, not the record.
                    context = {"invalidPropertyName": [property_name or "unknown"]}
                errors.append(
                    {
                        "status": _CATEGORY_STATUS.get(category, "400"),
                        "category": category,
                        "message": message,
                        "errors": [{"message": message, "code": category}],
                        "context": context,
                        "links": {},
                    }
                )
                continue
            hs_id = self._index.get((object_type, id_property, record_id))
            new = hs_id is None
            if hs_id is None:
                hs_id = str(self._next_id)
                self._next_id += 1
                objects[hs_id] = {}
                self._stamps[hs_id] = (started, started)
            stored = objects[hs_id]
            stored.update(item["properties"])
            stored[id_property] = record_id
            for prop in self.catalog.unique(object_type):
                if prop in stored:
                    self._index[(object_type, prop, stored[prop])] = hs_id
            self._stamps[hs_id] = (self._stamps[hs_id][0], started)
            result = {
                "id": hs_id,
                "properties": dict(stored) | {"hs_object_id": hs_id},
                "createdAt": self._stamps[hs_id][0],
                "updatedAt": started,
                "archived": False,
                "new": new,
            }
            if trace and self.echo_trace_ids:
                result["objectWriteTraceId"] = trace
            results.append(result)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _iso_now(),
        }
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        return json_reply(207 if errors else 200, body, self._limit_headers())


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_json(request: SimRequest) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json"

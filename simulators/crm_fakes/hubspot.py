"""A fake HubSpot CRM v3 batch upsert endpoint, written from crm-apis.md sections 1 and 3.

`POST /crm/v3/objects/{objectType}/batch/upsert` with `Authorization: Bearer <token>` (401 for
none, Basic or `?hapikey=`). The whole request is refused with 400 VALIDATION_ERROR for more than
100 inputs, a non-string property value or id, a missing `idProperty`, one that is not a unique
property, or the same id twice. Records named by `fail_record` fail alone: the answer is a 207
with `numErrors` and `errors[]`. Every answer carries the `X-HubSpot-RateLimit-*` headers, counted
against a 10-second window and a daily allowance on the injected clock; going over answers 429
with `policyName` TEN_SECONDLY_ROLLING or DAILY (and `Retry-After` when `retry_after` is set).
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from simulators.crm_fakes.server import LOOPBACK, CrmFake, json_reply, parse_json
from simulators.tiktok.responses import Reply, SimRequest

MAX_INPUTS = 100
TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"
DEFAULT_TOKEN = "fake-hubspot-token"
_ROUTE = re.compile(r"^/crm/v3/objects/([A-Za-z0-9_-]+)/batch/upsert$")
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
        clock: Callable[[], float] = time.monotonic,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.unique_properties = unique_properties or {"contacts": {"tiktok_open_id", "email"}}
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
        self._failures: dict[str, tuple[str, str]] = {}
        self._next_id = 1000

    # --- levers for tests ---

    def fail_record(self, record_id: str, message: str, category: str = "VALIDATION_ERROR") -> None:
        """Inputs with this id fail alone (207) until `clear_failures`."""
        with self.lock:
            self._failures[record_id] = (message, category)

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

    def answer(self, request: SimRequest, fault: str | None) -> Reply:
        match = _ROUTE.match(request.path)
        if request.method != "POST" or not match:
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
        if fault == "forbidden":
            return self._error(
                403, "This app hasn't been granted all required scopes.", "MISSING_SCOPES"
            )
        if fault == "server_error":
            return self._error(500, "internal error", "INTERNAL_ERROR")
        if fault == "bad_gateway":
            return Reply(502, BAD_GATEWAY_HTML, "text/html", self._limit_headers())
        object_type = match[1]
        if object_type not in self.unique_properties:
            return self._error(
                404, f"Unable to infer object type from: {object_type}", "OBJECT_NOT_FOUND"
            )
        try:
            inputs = self._validate(object_type, parse_json(request.body))
        except _Refusal as refusal:
            return self._error(400, refusal.message, refusal.category)
        return self._upsert(object_type, inputs)

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
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "requestId": str(uuid.uuid4()),
        }
        headers = self._limit_headers()
        if self.retry_after is not None:
            headers += (("Retry-After", self.retry_after),)
        return json_reply(429, body, headers)

    def _limit_headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(self.window_ms)),
            ("X-HubSpot-RateLimit-Max", str(self.window_max)),
            ("X-HubSpot-RateLimit-Remaining", str(max(self.window_max - len(self._window), 0))),
            ("X-HubSpot-RateLimit-Daily", str(self.daily_limit)),
            (
                "X-HubSpot-RateLimit-Daily-Remaining",
                str(max(self.daily_limit - self._daily_used, 0)),
            ),
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
            id_property = item.get("idProperty")
            if id_property not in self.unique_properties[object_type]:
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
                message, category = self._failures[record_id]
                context: dict[str, list[str]] = {"ids": [record_id]}
                if trace:
                    context["objectWriteTraceId"] = [str(trace)]
                errors.append(
                    {
                        "status": "error",
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
            for prop in self.unique_properties[object_type]:
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
            if trace:
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

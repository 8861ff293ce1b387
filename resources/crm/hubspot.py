"""HubSpot CRM v3 batch upsert: `POST /crm/v3/objects/{objectType}/batch/upsert`.

At most 100 inputs per request, each `{"idProperty", "id", "properties", "objectWriteTraceId"}`
with every property value a string (null is sent as "", which clears the property in HubSpot).
A 200 or 207 answer carries one result per written record (`new`: created or updated) and, for
207, `errors[]` naming the failed inputs. 429 with `policyName: DAILY` stops the push; other
429s wait for Retry-After (seconds or milliseconds) or the rate window. A spent window
(`X-HubSpot-RateLimit-Remaining: 0`) pauses before the next request instead of earning a 429.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from resources.crm.batching import BatchSender
from resources.crm.config import HUBSPOT, HubSpotSettings
from resources.crm.errors import (
    ApiLimitExhausted,
    AuthError,
    ContractViolation,
    RateLimited,
    RequestRejected,
    TargetNotFound,
    TransientError,
)
from resources.crm.http import CrmHttp
from resources.crm.models import AUTH, TRANSIENT, VALIDATION, BatchResult, Record, Rejection

MAX_BATCH = 100
DAILY_POLICY = "DAILY"
# A Retry-After above this many is read as milliseconds: HubSpot's windows are 10 s long, and the
# docs disagree on the unit (crm-apis.md 1.6).
RETRY_AFTER_MS_THRESHOLD = 120.0
_CATEGORY_CLASSES = {
    "RATE_LIMITS": TRANSIENT,
    "INVALID_AUTHENTICATION": AUTH,
    "MISSING_SCOPES": AUTH,
}


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds or milliseconds, else the rate window; None when neither is given."""
    retry_after = _number(headers.get("retry-after"))
    if retry_after is not None:
        return retry_after / 1000 if retry_after > RETRY_AFTER_MS_THRESHOLD else retry_after
    window_ms = _number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    return window_ms / 1000 if window_ms is not None else None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_facts(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """message, category, correlationId of an error body; every field may be missing."""
    body = _json(response)
    if not isinstance(body, dict):
        return f"HTTP {response.status_code} without a JSON error body", None, None
    message = str(body.get("message") or f"HTTP {response.status_code}")
    category = body.get("category") or body.get("errorType")
    correlation = body.get("correlationId")
    return message, str(category) if category else None, str(correlation) if correlation else None


class HubSpotClient:
    """Upserts records of one object type by a unique property (`key`)."""

    service = HUBSPOT

    def __init__(
        self,
        settings: HubSpotSettings,
        object_type: str,
        *,
        http: CrmHttp | None = None,
        batch_size: int = MAX_BATCH,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"HubSpot batch size must be 1-{MAX_BATCH}, not {batch_size}")
        self._settings = settings
        self._url = f"{settings.base_url}/crm/v3/objects/{object_type}/batch/upsert"
        self.http = http or CrmHttp(HUBSPOT)
        self.batch_size = batch_size
        self._pause_s = 0.0

    def close(self) -> None:
        self.http.close()

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]:
        sender = BatchSender(lambda batch: self._upsert(batch, key), key, self.batch_size)
        return sender.batches(records)

    def _upsert(self, batch: list[Record], key: str) -> BatchResult:
        inputs, local = [], BatchResult()
        for record in batch:
            problem = _local_problem(record, key)
            if problem:
                local += BatchResult.all_rejected([str(record.get(key))], problem, VALIDATION)
                continue
            properties = {name: "" if value is None else value for name, value in record.items()}
            inputs.append(
                {
                    "idProperty": key,
                    "id": record[key],
                    "properties": properties,
                    # Unique per input: it enables multi-status answers and names failed inputs.
                    "objectWriteTraceId": record[key],
                }
            )
        if not inputs:
            return local
        self.http.pause(self._pause_s)
        self._pause_s = 0.0
        headers = {"Authorization": f"Bearer {self._settings.access_token}"}
        response = self.http.send(
            "POST", self._url, json={"inputs": inputs}, headers=headers, classify=self._classify
        )
        return local + _parse_batch(response, [item["id"] for item in inputs], key)

    def _classify(self, response: httpx.Response) -> httpx.Response:
        self._read_limits(response.headers)
        status = response.status_code
        if status in (200, 207):
            return response
        message, category, correlation = _error_facts(response)
        facts: dict[str, Any] = {
            "service": HUBSPOT,
            "status": status,
            "code": category,
            "correlation_id": correlation,
        }
        if status == 429:
            return self._rate_limited(response, facts)
        if status == 401:
            raise AuthError(
                f"HubSpot refused the access token ({message}); set HUBSPOT_ACCESS_TOKEN to a "
                "valid private app token",
                **facts,
            )
        if status == 403:
            raise AuthError(
                f"HubSpot refused the request ({message}); give the private app the write scope "
                "of this object type, e.g. crm.objects.contacts.write",
                **facts,
            )
        if status == 404:
            raise TargetNotFound(
                f"HubSpot has no such object type ({message}); check target.object in the mapping",
                **facts,
            )
        if status in (400, 409, 422):
            raise RequestRejected(message, **facts)
        if status >= 500:
            raise TransientError(f"HubSpot answered {status}: {message}", **facts)
        raise ContractViolation(f"HubSpot answered an unexpected {status}: {message}", **facts)

    def _rate_limited(self, response: httpx.Response, facts: dict[str, Any]) -> httpx.Response:
        body = _json(response)
        body = body if isinstance(body, dict) else {}
        policy = str(body.get("policyName") or "unknown")
        message = str(body.get("message") or "rate limit reached")
        facts["code"] = policy
        if policy == DAILY_POLICY:
            raise ApiLimitExhausted(
                f"HubSpot's daily API limit is used up ({message}); it resets at midnight in the "
                "HubSpot account's time zone: run the push again then (records not sent are "
                "kept as transient rejections and sent by that run)",
                **facts,
            )
        raise RateLimited(
            f"HubSpot rate limit {policy}: {message}",
            retry_after_s=retry_after_seconds(response.headers),
            **facts,
        )

    def _read_limits(self, headers: Mapping[str, str]) -> None:
        limits = self.http.stats.limits
        for header, name in (
            ("x-hubspot-ratelimit-daily-remaining", "hubspot_daily_remaining"),
            ("x-hubspot-ratelimit-remaining", "hubspot_window_remaining"),
        ):
            if header in headers:
                limits[name] = headers[header]
        remaining = _number(headers.get("x-hubspot-ratelimit-remaining"))
        window_ms = _number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        if remaining == 0 and window_ms:
            self._pause_s = window_ms / 1000


def _local_problem(record: Record, key: str) -> str | None:
    """What HubSpot would refuse for the whole batch; caught here so only this record fails."""
    if not isinstance(record.get(key), str) or not record[key]:
        return f"{key}: the unique id property is empty; HubSpot cannot upsert without it"
    for name, value in record.items():
        if value is not None and not isinstance(value, str):
            return (
                f"{name}: HubSpot takes only strings, got {type(value).__name__}; "
                "declare the field type: string in the mapping"
            )
    return None


def _error_keys(error: dict[str, Any]) -> list[str]:
    context = error.get("context") if isinstance(error.get("context"), dict) else {}
    for name in ("objectWriteTraceId", "ids", "id"):
        values = context.get(name)
        if isinstance(values, list) and values:
            return [str(value) for value in values]
    return [str(error["id"])] if error.get("id") else []


def _error_class(error: dict[str, Any]) -> str:
    category = str(error.get("category") or "")
    if category in _CATEGORY_CLASSES:
        return _CATEGORY_CLASSES[category]
    status = str(error.get("status") or "")
    return TRANSIENT if status.startswith("5") or status == "429" else VALIDATION


def _error_reason(error: dict[str, Any]) -> str:
    details = error.get("errors") if isinstance(error.get("errors"), list) else []
    messages = [str(d["message"]) for d in details if isinstance(d, dict) and d.get("message")]
    head = str(error.get("message") or error.get("category") or "refused")
    return "; ".join([head, *[m for m in messages if m != head]])


def _parse_batch(response: httpx.Response, sent: list[str], key: str) -> BatchResult:
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ContractViolation(
            f"HubSpot answered {response.status_code} without a results list",
            service=HUBSPOT,
            status=response.status_code,
        )
    pending = set(sent)
    created, updated, crm_ids = [], [], {}
    for result in body["results"]:
        if not isinstance(result, dict):
            continue
        properties = result.get("properties") if isinstance(result.get("properties"), dict) else {}
        record_key = result.get("objectWriteTraceId") or properties.get(key)
        if record_key not in pending:
            continue
        pending.discard(record_key)
        (created if result.get("new") else updated).append(record_key)
        if result.get("id"):
            crm_ids[record_key] = str(result["id"])
    rejected: list[Rejection] = []
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    unmatched: list[str] = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        keys = [k for k in _error_keys(error) if k in pending]
        if not keys:
            unmatched.append(_error_reason(error))
        for record_key in keys:
            pending.discard(record_key)
            rejected.append(Rejection(record_key, _error_reason(error), _error_class(error)))
    accepted: list[str] = []
    if response.status_code == 200 and len(body["results"]) == len(sent):
        # A complete answer with one result per input whose results could not be told apart
        # (no trace id, key property not echoed): every input was written.
        accepted = [k for k in sent if k in pending]
    else:
        # Not written and not named by an error: send again next run rather than assume success.
        reason = "HubSpot returned no result for this record"
        if unmatched:
            reason += f" (unattributed errors: {'; '.join(unmatched)[:500]})"
        rejected += [Rejection(k, reason, TRANSIENT) for k in sent if k in pending]
    return BatchResult(
        created=tuple(created),
        updated=tuple(updated),
        accepted=tuple(accepted),
        rejected=tuple(rejected),
        crm_ids=crm_ids,
    )

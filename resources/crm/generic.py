"""A generic JSON endpoint: `METHOD GENERIC_CRM_URL` with `{"key", "object", "records"}`.

The URL may contain `{object}`, replaced by the mapping's target object, so one endpoint can take
several mappings. Any 2xx accepts the batch. An answer may report per-record outcomes as
`{"results": [{"key": ..., "status": "created" | "updated" | "error", "message": ...,
"retryable": bool}]}`; without it every record counts as accepted. 429 honours Retry-After
(seconds), 5xx and transport errors are retried, 401/403 stop the push, 400/409/422 refuse the
batch (it is split to find the records at fault).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from resources.crm.batching import BatchSender
from resources.crm.config import GENERIC, GenericSettings
from resources.crm.errors import (
    AuthError,
    ContractViolation,
    RateLimited,
    RequestRejected,
    TargetNotFound,
    TransientError,
)
from resources.crm.http import CrmHttp
from resources.crm.models import TRANSIENT, VALIDATION, BatchResult, Record, Rejection

MAX_ERROR_TEXT = 300  # an endpoint's error page can be long HTML: keep the reason readable


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_ERROR_TEXT] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and (body.get("message") or body.get("error")):
        return str(body.get("message") or body.get("error"))[:MAX_ERROR_TEXT]
    return f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class GenericClient:
    """Sends records of one object to a configured JSON endpoint."""

    service = GENERIC

    def __init__(
        self, settings: GenericSettings, object_name: str, *, http: CrmHttp | None = None
    ) -> None:
        self._settings = settings
        self._object = object_name
        self._url = settings.url.replace("{object}", quote(object_name, safe="/"))
        self.http = http or CrmHttp(GENERIC)
        self.batch_size = settings.batch_size

    def close(self) -> None:
        self.http.close()

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]:
        sender = BatchSender(lambda batch: self._send(batch, key), key, self.batch_size)
        return sender.batches(records)

    def _send(self, batch: list[Record], key: str) -> BatchResult:
        body = {
            "key": key,
            "object": self._object,
            "records": [{name: _value(v) for name, v in record.items()} for record in batch],
        }
        headers = dict([self._settings.auth_header]) if self._settings.auth_header else {}
        response = self.http.send(
            self._settings.method, self._url, json=body, headers=headers, classify=self._classify
        )
        return _parse(response, [str(record[key]) for record in batch])

    def _classify(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        message = _message(response)
        facts: dict[str, Any] = {"service": GENERIC, "status": status}
        if status == 429:
            raise RateLimited(
                f"the endpoint is rate limiting: {message}",
                retry_after_s=_retry_after(response),
                **facts,
            )
        if status in (401, 403):
            raise AuthError(
                f"the endpoint refused the credentials ({status}: {message}); check "
                "GENERIC_CRM_AUTH_HEADER",
                **facts,
            )
        if status == 404:
            raise TargetNotFound(
                f"the endpoint answered 404 ({message}); check GENERIC_CRM_URL", **facts
            )
        if status in (400, 409, 422):
            raise RequestRejected(message, **facts)
        if status >= 500:
            raise TransientError(f"the endpoint answered {status}: {message}", **facts)
        raise ContractViolation(f"the endpoint answered an unexpected {status}", **facts)


def _parse(response: httpx.Response, keys: list[str]) -> BatchResult:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return BatchResult(accepted=tuple(keys))
    sent = set(keys)
    by_key = {
        str(r.get("key")): r for r in results if isinstance(r, dict) and str(r.get("key")) in sent
    }
    created, updated, accepted, rejected = [], [], [], []
    for key in keys:
        result = by_key.get(key)
        status = str(result.get("status", "")).lower() if result else "accepted"
        if status == "created":
            created.append(key)
        elif status == "updated":
            updated.append(key)
        elif status in ("error", "rejected", "failed"):
            error_class = TRANSIENT if result and result.get("retryable") else VALIDATION
            reason = str((result or {}).get("message") or "the endpoint refused the record")
            rejected.append(Rejection(key, reason[:MAX_ERROR_TEXT], error_class))
        else:
            accepted.append(key)
    return BatchResult(
        created=tuple(created),
        updated=tuple(updated),
        accepted=tuple(accepted),
        rejected=tuple(rejected),
    )

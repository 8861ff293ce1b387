"""Salesforce sObject Collections upsert by external id.

`PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}` with
`{"allOrNone": false, "records": [{"attributes": {"type": SObject}, ...}]}`, at most 200 records.
A 200 carries one UpsertResult per record, in order (`success`, `created`, `errors[]`), so a
partial failure is a 200, never a 207. Whole-request errors are JSON arrays of
`{message, errorCode, fields}`; 403 `REQUEST_LIMIT_EXCEEDED` (the org's rolling 24 h allocation)
stops the push. `Sforce-Limit-Info: api-usage=used/limit` is reported as metadata.

Archiving deletes: `DELETE .../composite/sobjects?ids=...&allOrNone=false` (at most 200 ids, one
DeleteResult per id) for records whose Salesforce id the push state kept, and
`DELETE .../sobjects/{SObject}/{ExternalIdField}/{value}` (204) for the others. A record already
deleted (ENTITY_IS_DELETED, or 404 by external id) counts as archived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from resources.crm.batching import BatchSender
from resources.crm.config import SALESFORCE, SalesforceSettings
from resources.crm.errors import (
    ApiLimitExhausted,
    AuthError,
    ContractViolation,
    RequestRejected,
    TargetNotFound,
    TransientError,
)
from resources.crm.http import CrmHttp
from resources.crm.models import (
    AUTH,
    TRANSIENT,
    VALIDATION,
    Archive,
    BatchResult,
    Record,
    Rejection,
)

MAX_BATCH = 200
LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
ALREADY_DELETED = "ENTITY_IS_DELETED"
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
# Per-record status codes worth sending again on the next run; everything else is the content.
_TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"}
)
_AUTH_CODES = frozenset(
    {"INVALID_SESSION_ID", "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"}
)


def _value(value: Any) -> Any:
    """JSON for Salesforce: dateTime as 2026-01-01T12:00:00.000Z, date as 2026-01-01."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    return value


def _errors(response: httpx.Response) -> tuple[str, str | None]:
    """message and errorCode of Salesforce's array-of-errors body (first entry)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} without a JSON error body", None
    entries = body if isinstance(body, list) else [body]
    first = entries[0] if entries and isinstance(entries[0], dict) else {}
    message = "; ".join(
        str(entry.get("message"))
        for entry in entries
        if isinstance(entry, dict) and entry.get("message")
    )
    code = first.get("errorCode") or first.get("statusCode")
    return message or f"HTTP {response.status_code}", str(code) if code else None


def _record_class(errors: list[dict[str, Any]]) -> str:
    codes = {str(error.get("statusCode") or error.get("errorCode") or "") for error in errors}
    if codes & _AUTH_CODES:
        return AUTH
    if codes and codes <= _TRANSIENT_CODES:
        return TRANSIENT
    return VALIDATION


def _record_reason(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        code = error.get("statusCode") or error.get("errorCode") or "ERROR"
        fields = error.get("fields") or []
        where = f" (fields: {', '.join(map(str, fields))})" if fields else ""
        parts.append(f"{code}: {error.get('message') or 'refused'}{where}")
    return "; ".join(parts) or "Salesforce refused the record without saying why"


class SalesforceClient:
    """Upserts records of one sObject by an external id field (`key`)."""

    service = SALESFORCE

    def __init__(
        self,
        settings: SalesforceSettings,
        sobject: str,
        *,
        http: CrmHttp | None = None,
        batch_size: int = MAX_BATCH,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"Salesforce batch size must be 1-{MAX_BATCH}, not {batch_size}")
        self._settings = settings
        self._sobject = sobject
        self._base = f"{settings.instance_url}/services/data/v{settings.api_version}"
        self.http = http or CrmHttp(SALESFORCE)
        self.batch_size = batch_size

    def close(self) -> None:
        self.http.close()

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]:
        sender = BatchSender(lambda batch: self._upsert(batch, key), key, self.batch_size)
        return sender.batches(records)

    def _upsert(self, batch: list[Record], key: str) -> BatchResult:
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": self._sobject}}
                | {name: _value(value) for name, value in record.items()}
                for record in batch
            ],
        }
        url = f"{self._base}/composite/sobjects/{self._sobject}/{key}"
        headers = {"Authorization": f"Bearer {self._settings.access_token}"}
        response = self.http.send("PATCH", url, json=body, headers=headers, classify=self._classify)
        return _parse_results(response, [str(record[key]) for record in batch])

    def archive_batches(self, archives: Sequence[Archive], key: str) -> Iterator[BatchResult]:
        """Delete records: by Salesforce id, 200 per request, else one by one by external id."""
        headers = {"Authorization": f"Bearer {self._settings.access_token}"}
        known = [a for a in archives if a.crm_id]
        for start in range(0, len(known), self.batch_size):
            chunk = known[start : start + self.batch_size]
            ids = ",".join(str(a.crm_id) for a in chunk)
            url = f"{self._base}/composite/sobjects?ids={ids}&allOrNone=false"
            try:
                response = self.http.send("DELETE", url, headers=headers, classify=self._classify)
            except RequestRejected as err:
                reason = f"Salesforce refused the delete ({err.status}): {err.message}"
                yield BatchResult.all_rejected([a.key for a in chunk], reason, VALIDATION)
                continue
            yield _parse_deletes(response, chunk)
        for archive in (a for a in archives if not a.crm_id):
            value = quote(archive.key, safe="")
            url = f"{self._base}/sobjects/{self._sobject}/{key}/{value}"
            try:
                self.http.send(
                    "DELETE", url, headers=headers, classify=self._classify_single_delete
                )
            except RequestRejected as err:
                reason = f"Salesforce refused the delete ({err.status}): {err.message}"
                yield BatchResult.all_rejected([archive.key], reason, VALIDATION)
                continue
            yield BatchResult(archived=(archive.key,))

    def _classify_single_delete(self, response: httpx.Response) -> httpx.Response:
        if response.status_code in (204, 404):
            return response  # 404: no record has this external id any more
        return self._classify(response)

    def classify(self, response: httpx.Response) -> httpx.Response:
        """The typed error of a Salesforce answer (200 passes), for any REST resource."""
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> httpx.Response:
        usage = _USAGE.search(response.headers.get("sforce-limit-info", ""))
        if usage:
            self.http.stats.limits["salesforce_api_usage"] = f"{usage[1]}/{usage[2]}"
        status = response.status_code
        if status == 200:
            return response
        message, code = _errors(response)
        facts: dict[str, Any] = {"service": SALESFORCE, "status": status, "code": code}
        if status == 403 and code == LIMIT_EXCEEDED:
            raise ApiLimitExhausted(
                f"Salesforce refused the request: the org's API allocation is used up "
                f"({message}); it counts over a rolling 24 hours, so run the push again later "
                "(records not sent are kept as transient rejections and sent by that run)",
                **facts,
            )
        if status == 401:
            raise AuthError(
                f"Salesforce refused the session ({code}: {message}); set "
                "SALESFORCE_ACCESS_TOKEN to a fresh access token",
                **facts,
            )
        if status == 403:
            raise AuthError(
                f"Salesforce refused the request ({code}: {message}); the user needs edit access "
                f"to {self._sobject} and its fields",
                **facts,
            )
        if status == 404:
            raise TargetNotFound(
                f"Salesforce has no such sObject or external id field ({code}: {message}); check "
                "target.object and key in the mapping, and mark the key field as External ID",
                **facts,
            )
        if status == 300:
            raise RequestRejected(
                f"an external id matched more than one {self._sobject} (300 Multiple Choices); "
                "merge the duplicates in Salesforce and make the field Unique",
                **facts,
            )
        if status == 400:
            raise RequestRejected(f"{code}: {message}", **facts)
        if status >= 500:
            raise TransientError(f"Salesforce answered {status}: {message}", **facts)
        raise ContractViolation(f"Salesforce answered an unexpected {status}: {message}", **facts)


def _parse_results(response: httpx.Response, keys: list[str]) -> BatchResult:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list) or len(body) != len(keys):
        raise ContractViolation(
            f"Salesforce answered 200 without one result per record ({len(keys)} sent)",
            service=SALESFORCE,
            status=response.status_code,
        )
    created, updated, rejected, crm_ids = [], [], [], {}
    # Results come back in the order the records were sent.
    for key, result in zip(keys, body, strict=True):
        if not isinstance(result, dict):
            raise ContractViolation("Salesforce result is not an object", service=SALESFORCE)
        if result.get("success") is True:
            (created if result.get("created") else updated).append(key)
            if result.get("id"):
                crm_ids[key] = str(result["id"])
            continue
        errors = [e for e in result.get("errors") or [] if isinstance(e, dict)]
        rejected.append(Rejection(key, _record_reason(errors), _record_class(errors)))
    return BatchResult(
        created=tuple(created), updated=tuple(updated), rejected=tuple(rejected), crm_ids=crm_ids
    )


def _parse_deletes(response: httpx.Response, chunk: list[Archive]) -> BatchResult:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list) or len(body) != len(chunk):
        raise ContractViolation(
            f"Salesforce answered 200 without one result per id ({len(chunk)} sent)",
            service=SALESFORCE,
            status=response.status_code,
        )
    archived, rejected = [], []
    for archive, result in zip(chunk, body, strict=True):
        errors = [e for e in (result or {}).get("errors") or [] if isinstance(e, dict)]
        codes = {str(e.get("statusCode") or e.get("errorCode")) for e in errors}
        if (isinstance(result, dict) and result.get("success") is True) or codes == {
            ALREADY_DELETED
        }:
            archived.append(archive.key)
            continue
        rejected.append(Rejection(archive.key, _record_reason(errors), _record_class(errors)))
    return BatchResult(archived=tuple(archived), rejected=tuple(rejected))

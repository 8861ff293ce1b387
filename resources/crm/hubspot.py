"""HubSpot CRM v3 batch upsert and archive: `POST /crm/v3/objects/{objectType}/batch/upsert`.

At most 100 inputs per request, each `{"idProperty", "id", "properties", "objectWriteTraceId"}`
with every property value a string (null is sent as "", which clears the property in HubSpot).
The answer is read by its contract (`hubspot_answers`): a batch whose `status` is not COMPLETE is
sent again a bounded number of times and never recorded as written; an input is written only when
a result names it; errors that cannot be matched to one input make the client split the failed
inputs and send them again, within a budget of extra calls. Errors and 429s are read in
`hubspot_errors`. A spent window (`X-HubSpot-RateLimit-Remaining: 0`) pauses before the next
request instead of earning a 429. Archiving (`batch/archive`, 204) takes HubSpot's own ids, which
the push state keeps from the upsert results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from resources.crm.batching import BatchSender
from resources.crm.config import HUBSPOT, HubSpotSettings
from resources.crm.errors import ContractViolation, RequestRejected
from resources.crm.http import CrmHttp
from resources.crm.hubspot_answers import BATCH_STATUSES, COMPLETE, BatchAnswer, read_answer
from resources.crm.hubspot_errors import (
    DAILY_POLICY,
    json_body,
    number,
    raise_for_error,
    retry_after_seconds,
)
from resources.crm.models import TRANSIENT, VALIDATION, Archive, BatchResult, Record

__all__ = ["DAILY_POLICY", "MAX_BATCH", "HubSpotClient", "retry_after_seconds"]

MAX_BATCH = 100
# A batch answered CANCELED, PENDING or PROCESSING is sent again this many times in all.
STATUS_ATTEMPTS = 3
STATUS_RETRY_WAIT_S = 2.0
# Extra requests a push may spend splitting failed inputs that errors do not name.
SPLIT_CALL_BUDGET = 64


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
        self._object_type = object_type
        self._url = f"{settings.base_url}/crm/v3/objects/{object_type}/batch/upsert"
        self.http = http or CrmHttp(HUBSPOT)
        self.batch_size = batch_size
        self._pause_s = 0.0
        self._split_calls_left = SPLIT_CALL_BUDGET

    def close(self) -> None:
        self.http.close()

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]:
        self._split_calls_left = SPLIT_CALL_BUDGET
        sender = BatchSender(lambda batch: self._upsert(batch, key), key, self.batch_size)
        return sender.batches(records)

    def archive_batches(self, archives: Sequence[Archive], key: str) -> Iterator[BatchResult]:
        """Archive records by HubSpot id, 100 per request; one result per request."""
        unknown = [a for a in archives if not a.crm_id]
        if unknown:
            yield BatchResult.all_rejected(
                [a.key for a in unknown],
                f"no HubSpot id is recorded for this {key}, so it cannot be archived by batch; "
                "archive it in HubSpot by hand",
                VALIDATION,
            )
        known = [a for a in archives if a.crm_id]
        url = self._url.removesuffix("/upsert") + "/archive"
        for start in range(0, len(known), self.batch_size):
            chunk = known[start : start + self.batch_size]
            body = {"inputs": [{"id": a.crm_id} for a in chunk]}
            try:
                self._send(url, body)
            except RequestRejected as err:
                # A refused archive request is not a reason to stop the push: keep the reason.
                reason = f"HubSpot refused the archive ({err.status}): {err.message}"
                yield BatchResult.all_rejected([a.key for a in chunk], reason, VALIDATION)
                continue
            yield BatchResult(archived=tuple(a.key for a in chunk))

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
        return local + self._write(inputs, key)

    def _write(
        self, inputs: list[dict[str, Any]], key: str, second_try: bool = False
    ) -> BatchResult:
        answer = self._complete_answer(inputs, key)
        if isinstance(answer, BatchResult):
            return answer
        result = answer.written + BatchResult(rejected=answer.rejected)
        if answer.unanswered:
            retry = [item for item in inputs if item["id"] in answer.unanswered]
            if not second_try and self._spend(1):
                result += self._write(retry, key, second_try=True)
            else:
                result += BatchResult.all_rejected(
                    answer.unanswered,
                    "HubSpot answered neither a result nor an error for this record; sent "
                    "again by the next run",
                    TRANSIENT,
                )
        if answer.unattributed:
            failed = [item for item in inputs if item["id"] in answer.unattributed]
            result += self._split(failed, key, answer)
        return result

    def _split(self, failed: list[dict[str, Any]], key: str, answer: BatchAnswer) -> BatchResult:
        """Errors HubSpot did not attribute: send the failed inputs again in halves."""
        if len(failed) > 1 and self._spend(2):
            middle = len(failed) // 2
            return self._write(failed[:middle], key) + self._write(failed[middle:], key)
        reason = (
            f"{answer.unattributed_reason} (HubSpot did not say which of {len(failed)} inputs "
            "this concerns; not split further)"
        )
        return BatchResult.all_rejected(
            [item["id"] for item in failed], reason, answer.unattributed_class
        )

    def _spend(self, calls: int) -> bool:
        if self._split_calls_left < calls:
            return False
        self._split_calls_left -= calls
        return True

    def _complete_answer(self, inputs: list[dict[str, Any]], key: str) -> BatchAnswer | BatchResult:
        """The first COMPLETE answer; after STATUS_ATTEMPTS other ones, every input rejected."""
        statuses: list[str] = []
        for attempt in range(STATUS_ATTEMPTS):
            if attempt:
                self.http.stats.count_retry(HUBSPOT, 0.0)  # the pause below counts the wait
                self.http.pause(STATUS_RETRY_WAIT_S)
            response = self._send(self._url, {"inputs": inputs})
            answer = _read(response, inputs, key)
            if answer.status == COMPLETE:
                return answer
            statuses.append(answer.status)
        return BatchResult.all_rejected(
            [item["id"] for item in inputs],
            f"HubSpot answered the batch with status {', '.join(statuses)} "
            f"({STATUS_ATTEMPTS} tries): not recorded as written, sent again by the next run",
            TRANSIENT,
        )

    def _send(self, url: str, body: dict[str, Any]) -> httpx.Response:
        self.http.pause(self._pause_s)
        self._pause_s = 0.0
        headers = {"Authorization": f"Bearer {self._settings.access_token}"}
        return self.http.send("POST", url, json=body, headers=headers, classify=self._classify)

    def _classify(self, response: httpx.Response) -> httpx.Response:
        self._read_limits(response.headers)
        if response.status_code in (200, 204, 207):
            return response
        raise_for_error(
            response,
            scope_hint=f"crm.objects.{self._object_type}.write",
            not_found_hint="HubSpot has no such object type; check target.object in the mapping",
        )

    def _read_limits(self, headers: Mapping[str, str]) -> None:
        limits = self.http.stats.limits
        for header, name in (
            ("x-hubspot-ratelimit-daily-remaining", "hubspot_daily_remaining"),
            ("x-hubspot-ratelimit-remaining", "hubspot_window_remaining"),
        ):
            if header in headers:
                limits[name] = headers[header]
        remaining = number(headers.get("x-hubspot-ratelimit-remaining"))
        window_ms = number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
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


def _read(response: httpx.Response, inputs: list[dict[str, Any]], key: str) -> BatchAnswer:
    body = json_body(response)
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ContractViolation(
            f"HubSpot answered {response.status_code} without a results list",
            service=HUBSPOT,
            status=response.status_code,
        )
    if body.get("status") not in BATCH_STATUSES:
        raise ContractViolation(
            f"HubSpot answered {response.status_code} without a batch status "
            f"(got {str(body.get('status'))[:40]!r})",
            service=HUBSPOT,
            status=response.status_code,
        )
    return read_answer(response.status_code, body, inputs, key)

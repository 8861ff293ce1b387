"""Reading a HubSpot batch upsert answer by what its contract guarantees (crm-apis.md 1.4).

The contract guarantees a batch `status` and a `results` list whose items carry `id`, `properties`
and `new`; `objectWriteTraceId` is optional, and a 207 adds `errors[]` whose `context` keys are
not defined (its `id` is the error's own id, not a record's). So:

- an input was written when a result names it: by `objectWriteTraceId`, else by the value of its
  `idProperty` among the result's properties;
- an input without a result was not written, whatever the status code;
- an error is attributed to a failed input only when one of its context *values* is that input's
  id (never by a key name); one failed input takes every error nobody else took; several failed
  inputs with errors left over cannot be told apart (`unattributed`): the caller splits them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resources.crm.models import AUTH, TRANSIENT, VALIDATION, BatchResult, Rejection

COMPLETE = "COMPLETE"
BATCH_STATUSES = frozenset({"CANCELED", COMPLETE, "PENDING", "PROCESSING"})
_CATEGORY_CLASSES = {
    "RATE_LIMITS": TRANSIENT,
    "INVALID_AUTHENTICATION": AUTH,
    "MISSING_SCOPES": AUTH,
}
MAX_REASON = 1_000


@dataclass(frozen=True)
class BatchAnswer:
    """One answer, read: written inputs, failed ones with their reason, and what is unknown."""

    status: str
    written: BatchResult
    rejected: tuple[Rejection, ...] = ()
    # Failed inputs that the leftover errors concern, not told apart: split and send again.
    unattributed: tuple[str, ...] = ()
    unattributed_reason: str = ""
    unattributed_class: str = VALIDATION
    # Inputs with neither a result nor an error: not written, nothing said why.
    unanswered: tuple[str, ...] = ()


def error_class(error: dict[str, Any]) -> str:
    category = str(error.get("category") or "")
    if category in _CATEGORY_CLASSES:
        return _CATEGORY_CLASSES[category]
    status = str(error.get("status") or "")
    return TRANSIENT if status.startswith("5") or status == "429" else VALIDATION


def error_reason(error: dict[str, Any]) -> str:
    details = error.get("errors") if isinstance(error.get("errors"), list) else []
    messages = [str(d["message"]) for d in details if isinstance(d, dict) and d.get("message")]
    head = str(error.get("message") or error.get("category") or "refused")
    return "; ".join([head, *[m for m in messages if m != head]])[:MAX_REASON]


def combined_class(errors: Sequence[dict[str, Any]]) -> str:
    """AUTH if any error is about credentials, TRANSIENT if all are, else VALIDATION."""
    classes = {error_class(error) for error in errors}
    if AUTH in classes:
        return AUTH
    return TRANSIENT if classes == {TRANSIENT} else VALIDATION


def _context_values(error: dict[str, Any]) -> set[str]:
    context = error.get("context") if isinstance(error.get("context"), dict) else {}
    values: set[str] = set()
    for value in context.values():
        items = value if isinstance(value, list) else [value]
        values.update(str(item) for item in items if isinstance(item, str | int))
    return values


def _written(
    results: list[Any], inputs: Sequence[dict[str, Any]], key: str
) -> tuple[BatchResult, set[str]]:
    by_trace = {str(item.get("objectWriteTraceId")): item["id"] for item in inputs}
    ids = {item["id"] for item in inputs}
    created, updated, crm_ids, named = [], [], {}, set()
    for result in results:
        if not isinstance(result, dict):
            continue
        properties = result.get("properties") if isinstance(result.get("properties"), dict) else {}
        record_key = by_trace.get(str(result.get("objectWriteTraceId")))
        if record_key is None and properties.get(key) in ids:
            record_key = properties[key]
        if record_key is None or record_key in named:
            continue
        named.add(record_key)
        (created if result.get("new") else updated).append(record_key)
        if result.get("id"):
            crm_ids[record_key] = str(result["id"])
    written = BatchResult(created=tuple(created), updated=tuple(updated), crm_ids=crm_ids)
    return written, named


def read_answer(
    status_code: int, body: dict[str, Any], inputs: Sequence[dict[str, Any]], key: str
) -> BatchAnswer:
    """`body` holds a `results` list (checked by the caller); `inputs` as sent."""
    status = str(body.get("status"))
    results = body["results"]
    written, named = _written(results, inputs, key)
    failed = [item["id"] for item in inputs if item["id"] not in named]
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if not named and failed and status_code == 200 and not errors and len(results) == len(inputs):
        # One result per input, none telling which (no trace id, key property not echoed): a
        # complete 200 wrote every input, it just did not say which result is whose.
        crm_less = BatchResult(accepted=tuple(failed))
        return BatchAnswer(status, crm_less)
    rejected: list[Rejection] = []
    left = set(failed)
    leftover: list[dict[str, Any]] = []
    for error in errors:
        hit = sorted(left & _context_values(error)) if len(left) > 1 else []
        if not hit:
            leftover.append(error)
        for record_key in hit:
            rejected.append(Rejection(record_key, error_reason(error), error_class(error)))
    taken = {r.key for r in rejected}
    remaining = [k for k in failed if k not in taken]
    if not leftover or not remaining:
        return BatchAnswer(status, written, tuple(rejected), unanswered=tuple(remaining))
    reason = "; ".join(dict.fromkeys(error_reason(e) for e in leftover))[:MAX_REASON]
    if len(remaining) == 1:
        rejected.append(Rejection(remaining[0], reason, combined_class(leftover)))
        return BatchAnswer(status, written, tuple(rejected))
    return BatchAnswer(
        status,
        written,
        tuple(rejected),
        unattributed=tuple(remaining),
        unattributed_reason=reason,
        unattributed_class=combined_class(leftover),
    )

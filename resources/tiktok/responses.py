"""Turn one Display API HTTP response into data or a typed error: a small pure function.

TikTok's `error.code` decides, not the HTTP status alone (tiktok-api.md sections 6 and 11); the
status only breaks ties for bodies that are not JSON. A body that is not JSON at all (cut off,
garbled) is transient whatever the status: retried, bounded; valid JSON outside the contract is a
`ContractViolation`, never retried. Whether error bodies carry a `data` key is
unconfirmed (section 12.5), so it is never required on errors.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from resources.tiktok.errors import (
    AuthExpired,
    ContractViolation,
    PermanentError,
    RateLimited,
    ScopeMissing,
    TikTokError,
    TransientError,
)

_ERRORS_BY_CODE: dict[str, type[TikTokError]] = {
    "rate_limit_exceeded": RateLimited,
    "access_token_invalid": AuthExpired,
    "scope_not_authorized": ScopeMissing,
    "scope_permission_missed": ScopeMissing,
    "internal_error": TransientError,
}

_MAX_FACT_CHARS = 100
_SCOPE_OF_ENDPOINT = {"video_list": "video.list", "video_query": "video.list"}
_ADVICE: dict[type[TikTokError], str] = {
    RateLimited: "TikTok's per-endpoint rate limit was hit; the call is retried with backoff",
    AuthExpired: "the access token was rejected; it is refreshed once and the call retried",
    ScopeMissing: "the connection did not grant the scope this call needs; reconnect it with "
    "that scope to fill these columns",
    TransientError: "TikTok had an internal error; the call is retried",
    PermanentError: "TikTok rejected the request; this is not retried",
}


def classify_response(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    """Return the envelope's `data` object, or raise the typed error the response stands for."""
    status = response.status_code
    try:
        body = json.loads(response.content)
    # A hostile body nested thousands of levels deep makes the decoder recurse out of stack.
    except (ValueError, RecursionError) as err:
        if status == 429:
            raise RateLimited(
                "HTTP 429 without a JSON body", endpoint=endpoint, status=status
            ) from err
        if status >= 500:
            raise TransientError(
                f"HTTP {status} without a JSON body", endpoint=endpoint, status=status
            ) from err
        # A 2xx body that does not parse was cut on the way (a proxy, a reset mid-body) far more
        # often than TikTok changed its contract: retried like any blip, bounded the same way.
        raise TransientError(
            f"{endpoint}: response body is not valid JSON (HTTP {status}, "
            f"{len(response.content)} bytes); the answer was cut or garbled on the way",
            endpoint=endpoint,
            status=status,
        ) from err

    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        if status == 429 or status >= 500:
            kind = RateLimited if status == 429 else TransientError
            raise kind(f"HTTP {status} without an error envelope", endpoint=endpoint, status=status)
        raise ContractViolation(
            f"{endpoint}: response has no `error` envelope with a string `code` (HTTP {status})",
            endpoint=endpoint,
            status=status,
        )

    # TikTok's codes and log ids are short; a hostile or broken body must not put megabytes
    # into a failure message or Dagster metadata.
    code = error["code"][:_MAX_FACT_CHARS]
    log_id = error.get("log_id")
    log_id = log_id[:_MAX_FACT_CHARS] if isinstance(log_id, str) else None
    if error["code"] == "ok" and status < 400:
        data = body.get("data")
        if not isinstance(data, dict):
            raise ContractViolation(
                f"{endpoint}: `data` must be an object, got {type(data).__name__}",
                endpoint=endpoint,
                code=code,
                log_id=log_id,
                status=status,
            )
        return data

    kind = _ERRORS_BY_CODE.get(error["code"])
    if kind is None:
        kind = RateLimited if status == 429 else TransientError if status >= 500 else PermanentError
    message = str(error.get("message") or "")[:200]
    advice = _ADVICE[kind]
    if kind is ScopeMissing and endpoint in _SCOPE_OF_ENDPOINT:
        advice = f"{advice} (`{_SCOPE_OF_ENDPOINT[endpoint]}`)"
    raise kind(
        f"{endpoint}: {code}: {message} ({advice})",
        endpoint=endpoint,
        code=code,
        log_id=log_id,
        status=status,
    )

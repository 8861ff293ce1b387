"""HubSpot's error answers turned into typed errors, for every HubSpot endpoint the project calls.

The contract's error object requires `message`, `correlationId` and `category`; HubSpot's page on
errors says to treat every field as optional, so nothing here needs any of them. A 429 is read
whatever its body holds: the wait comes from `Retry-After` (seconds or milliseconds), else the
`X-HubSpot-RateLimit-Interval-Milliseconds` window, else a cautious default of one whole window;
the daily limit is told from the ten-second one by `policyName`, `category` or `subCategory`
naming DAILY, or by `X-HubSpot-RateLimit-Daily-Remaining: 0`. A 429 that says neither is taken
for the ten-second window, retried a bounded number of times, and then stops the push.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from resources.crm.config import HUBSPOT
from resources.crm.errors import (
    ApiLimitExhausted,
    AuthError,
    ContractViolation,
    RateLimited,
    RequestRejected,
    TargetNotFound,
    TransientError,
)

DAILY_POLICY = "DAILY"
# A Retry-After above this many is read as milliseconds: HubSpot's windows are 10 s long, and the
# docs disagree on the unit (crm-apis.md 1.6).
RETRY_AFTER_MS_THRESHOLD = 120.0
# No Retry-After and no window header: wait one whole ten-second window, and a second more.
DEFAULT_RATE_LIMIT_WAIT_S = 11.0


def number(value: str | None) -> float | None:
    try:
        parsed = float(value) if value is not None else None
    except ValueError:
        return None
    return parsed if parsed is not None and math.isfinite(parsed) and parsed >= 0 else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds or milliseconds, else the rate window; None when neither is given."""
    retry_after = number(headers.get("retry-after"))
    if retry_after is not None:
        return retry_after / 1000 if retry_after > RETRY_AFTER_MS_THRESHOLD else retry_after
    window_ms = number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    return window_ms / 1000 if window_ms is not None else None


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_facts(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """message, category, correlationId of an error body; every field may be missing."""
    body = json_body(response)
    if not isinstance(body, dict):
        return f"HTTP {response.status_code} without a JSON error body", None, None
    message = str(body.get("message") or f"HTTP {response.status_code}")
    category = body.get("category") or body.get("errorType")
    correlation = body.get("correlationId")
    return message, str(category) if category else None, str(correlation) if correlation else None


def required_scopes(response: httpx.Response) -> list[str]:
    """Scopes a 403 names in its details (`context.requiredGranularScopes` and the like)."""
    body = json_body(response)
    details = body.get("errors") if isinstance(body, dict) else None
    scopes: list[str] = []
    for detail in details if isinstance(details, list) else []:
        context = detail.get("context") if isinstance(detail, dict) else None
        for name, values in (context or {}).items() if isinstance(context, dict) else ():
            if "scope" in str(name).lower() and isinstance(values, list):
                scopes += [str(value) for value in values]
    return list(dict.fromkeys(scopes))


def _is_daily(body: dict[str, Any], headers: Mapping[str, str]) -> bool:
    named = (body.get(name) for name in ("policyName", "category", "subCategory"))
    if any(DAILY_POLICY in str(value).upper() for value in named if value):
        return True
    return number(headers.get("x-hubspot-ratelimit-daily-remaining")) == 0


def raise_rate_limited(response: httpx.Response, facts: dict[str, Any]) -> NoReturn:
    body = json_body(response)
    body = body if isinstance(body, dict) else {}
    policy = body.get("policyName") or body.get("subCategory") or body.get("category")
    message = str(body.get("message") or "rate limit reached")
    facts["code"] = str(policy) if policy else "RATE_LIMITS"
    if _is_daily(body, response.headers):
        raise ApiLimitExhausted(
            f"HubSpot's daily API limit is used up ({message}); it resets at midnight in the "
            "HubSpot account's time zone: run the push again then (records not sent are "
            "kept as transient rejections and sent by that run)",
            **facts,
        )
    wait = retry_after_seconds(response.headers)
    raise RateLimited(
        f"HubSpot rate limit {facts['code']}: {message}",
        retry_after_s=DEFAULT_RATE_LIMIT_WAIT_S if wait is None else wait,
        **facts,
    )


def raise_for_error(response: httpx.Response, *, scope_hint: str, not_found_hint: str) -> NoReturn:
    """The typed error of a non-success answer; `scope_hint` names the scope a 403 lacks."""
    status = response.status_code
    message, category, correlation = error_facts(response)
    facts: dict[str, Any] = {
        "service": HUBSPOT,
        "status": status,
        "code": category,
        "correlation_id": correlation,
    }
    if status == 429:
        raise_rate_limited(response, facts)
    if status == 401:
        raise AuthError(
            f"HubSpot refused the access token ({message}); set HUBSPOT_ACCESS_TOKEN to a "
            "valid private app token",
            **facts,
        )
    if status == 403:
        named = required_scopes(response)
        scopes = ", ".join(named) if named else scope_hint
        raise AuthError(
            f"HubSpot refused the request ({message}); give the private app the scope {scopes}",
            **facts,
        )
    if status == 404:
        raise TargetNotFound(f"HubSpot answered 404 ({message}); {not_found_hint}", **facts)
    if status in (400, 409, 415, 422):
        raise RequestRejected(message, **facts)
    if status >= 500:
        raise TransientError(f"HubSpot answered {status}: {message}", **facts)
    raise ContractViolation(f"HubSpot answered an unexpected {status}: {message}", **facts)

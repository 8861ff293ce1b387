"""One retrying HTTP sender shared by the CRM clients.

One request is the retry unit. The retry policy is the one the TikTok client uses too
(`resources.http_base.retrying`): transport errors, rate limits and 5xx are retried with full-jitter
exponential backoff and a cap; a wait the server asked for (Retry-After, a rate window) replaces
the backoff, capped by `max_wait_s`. What the answer means is decided by the client's `classify`
function, which raises a typed error or hands the response back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from resources.crm.errors import CrmError, RateLimited, TransientError
from resources.crm.models import CallStats
from resources.http_base import BACKOFF_CAP_S, MAX_WAIT_S, USER_AGENT, retrying, send

# Batch upserts of 100-200 records can take a while on the CRM side; connecting should not.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_ATTEMPTS = 5

Classify = Callable[[httpx.Response], httpx.Response]
_PLAIN_HEADERS = frozenset({"user-agent", "content-type", "accept"})


class CrmHttp:
    """Sends requests for one CRM service and counts them in `stats`."""

    def __init__(
        self,
        service: str,
        *,
        http: httpx.Client | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_cap_s: float = BACKOFF_CAP_S,
        max_wait_s: float = MAX_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.stats = CallStats(service=service)
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._max_attempts = max_attempts
        self._backoff_cap_s = backoff_cap_s
        self._max_wait_s = max_wait_s
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def pause(self, seconds: float) -> None:
        """Wait before the next request (a rate window is spent), capped like a Retry-After."""
        waited = min(max(seconds, 0.0), self._max_wait_s)
        if waited > 0:
            self.stats.count_wait(self.service, waited)
            self._sleep(waited)

    def send(
        self,
        method: str,
        url: str,
        *,
        classify: Classify,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        policy = retrying(
            self.stats,
            self.service,
            max_attempts=self._max_attempts,
            backoff_cap_s=self._backoff_cap_s,
            max_wait_s=self._max_wait_s,
            sleep=self._sleep,
        )
        return policy(self._send_once, method, url, classify, json, headers or {})

    def _send_once(
        self,
        method: str,
        url: str,
        classify: Classify,
        json: Any,
        headers: dict[str, str],
    ) -> httpx.Response:
        self.stats.count_request(self.service)
        response = send(
            self._http,
            method,
            url,
            peer=self.service,
            transient=lambda failure: TransientError(failure, service=self.service),
            json=json,
            headers={"User-Agent": USER_AGENT, **headers},
        )
        try:
            return classify(response)
        except CrmError as err:
            # The error quotes the CRM's answer, which may repeat the credentials it was sent.
            err.redact(*_credentials(url, headers))
            if isinstance(err, RateLimited):
                self.stats.count_rate_limited(self.service)
            raise


def _credentials(url: str, headers: dict[str, str]) -> list[str]:
    """The header values (and the token of `Bearer <token>`) and the URL's query values."""
    values = [value for name, value in headers.items() if name.lower() not in _PLAIN_HEADERS]
    values += [value.partition(" ")[2] for value in values]
    parts = httpx.URL(url)
    values += [value for _name, value in parts.params.multi_items()]
    return [*values, parts.password or ""]

"""One retrying HTTP sender shared by the CRM clients.

One request is the retry unit. Transport errors, rate limits and 5xx are retried with full-jitter
exponential backoff and a cap (tenacity); a wait the server asked for (Retry-After, a rate window)
replaces the backoff, capped by `max_wait_s`. What the answer means is decided by the client's
`classify` function, which raises a typed error or hands the response back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from resources.crm.errors import CrmError, RateLimited, TransientError
from resources.crm.models import CallStats

# Batch upserts of 100-200 records can take a while on the CRM side; connecting should not.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_ATTEMPTS = 5
BACKOFF_MULTIPLIER_S = 1.0
BACKOFF_CAP_S = 30.0
# Longest server-requested wait honoured before one retry (HubSpot's window is 10 s).
MAX_WAIT_S = 60.0
USER_AGENT = "tiktok-crm-sync/0.1 (+https://github.com/tiktok-crm-sync)"

Classify = Callable[[httpx.Response], httpx.Response]
_PLAIN_HEADERS = frozenset({"user-agent", "content-type", "accept"})


def _is_retryable(err: BaseException) -> bool:
    return isinstance(err, CrmError) and err.retryable


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
        self.stats = CallStats()
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._max_attempts = max_attempts
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self._backoff = wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_S, max=backoff_cap_s)

    def close(self) -> None:
        self._http.close()

    def pause(self, seconds: float) -> None:
        """Wait before the next request (a rate window is spent), capped like a Retry-After."""
        waited = min(max(seconds, 0.0), self._max_wait_s)
        if waited > 0:
            self.stats.seconds_waited += waited
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
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self._max_attempts),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        return retrying(self._send_once, method, url, classify, json, headers or {})

    def _wait(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, RateLimited) and err.retry_after_s is not None:
            return min(err.retry_after_s, self._max_wait_s)
        return self._backoff(state)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        self.stats.seconds_waited += state.upcoming_sleep

    def _send_once(
        self,
        method: str,
        url: str,
        classify: Classify,
        json: Any,
        headers: dict[str, str],
    ) -> httpx.Response:
        self.stats.requests += 1
        try:
            response = self._http.request(
                method, url, json=json, headers={"User-Agent": USER_AGENT, **headers}
            )
        except httpx.TransportError as err:
            # The message names the failure class only: httpx messages can echo the URL.
            raise TransientError(
                f"{type(err).__name__} talking to {self.service}", service=self.service
            ) from err
        try:
            return classify(response)
        except CrmError as err:
            # The error quotes the CRM's answer, which may repeat the credentials it was sent.
            err.redact(*_credentials(url, headers))
            if isinstance(err, RateLimited):
                self.stats.rate_limited += 1
            raise


def _credentials(url: str, headers: dict[str, str]) -> list[str]:
    """The header values (and the token of `Bearer <token>`) and the URL's query values."""
    values = [value for name, value in headers.items() if name.lower() not in _PLAIN_HEADERS]
    values += [value.partition(" ")[2] for value in values]
    parts = httpx.URL(url)
    values += [value for _name, value in parts.params.multi_items()]
    return [*values, parts.password or ""]

"""What the TikTok and CRM HTTP clients share, defined once: errors, the retry policy, call stats.

- `ApiError`: the base of `TikTokError` and `CrmError`. It says whether retrying can help
  (`retryable`), how long the server asked us to wait (`retry_after_s`), removes secrets a server
  echoed into it (`redact`), and lists its facts for Dagster metadata (`metadata`).
- `retrying`: one request is the retry unit. Only errors whose `retryable` is true are retried,
  with full-jitter exponential backoff and a cap; a wait the server asked for replaces the backoff,
  capped by `max_wait_s`. Every retry is counted, with the seconds slept, in `CallStats`.
  A client with rules of its own (TikTok's 429 patience) passes its own `stop`.
- `send`: an `httpx` transport error becomes the client's transient error, naming only the failure
  class (httpx messages can echo the URL, and a URL may carry a key or a token).
- `CallStats`: thread-safe counts of requests, retries, 429s and seconds waited, per endpoint
  (TikTok) or per service (CRM), reported with `as_metadata`.
- `USER_AGENT`, the header every client sends, and `is_loopback`, the test for a host that never
  leaves the machine (plain http and demo mode are allowed only there).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from resources.redaction import redact_secrets

BACKOFF_MULTIPLIER_S = 1.0
BACKOFF_CAP_S = 30.0
# Longest server-requested wait honoured before one retry.
MAX_WAIT_S = 60.0
USER_AGENT = "tiktok-crm-sync/0.1 (+https://github.com/tiktok-crm-sync)"

Stop = Callable[[RetryCallState], bool]


class ApiError(Exception):
    """Base class; `kind` is the stable name shown in Dagster failure metadata."""

    kind = "error"
    retryable = False
    # Other string attributes a server fills in, scrubbed by `redact` along with the message.
    redacted_fields: ClassVar[tuple[str, ...]] = ("code",)

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        # What the server asked us to wait before the next try; None: use the backoff.
        self.retry_after_s: float | None = None

    def reword(self, message: str) -> None:
        self.message = message
        self.args = (message,)

    def redact(self, *secrets: str) -> None:
        """Remove secrets a server echoed into the message (which quotes its answer) or a field."""
        self.reword(redact_secrets(self.message, secrets))
        for name in self.redacted_fields:
            value = getattr(self, name)
            setattr(self, name, value and redact_secrets(value, secrets))

    def details(self) -> dict[str, str | int | None]:
        """The stack's own facts, between the kind and the HTTP status; None values are dropped."""
        return {}

    def metadata(self) -> dict[str, str | int]:
        """What a failure shows in Dagster: never a token, only facts a user can act on."""
        facts = {"error_kind": self.kind, **self.details(), "http_status": self.status}
        return {key: value for key, value in facts.items() if value is not None}


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): a host name, not a URL."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_retryable(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.retryable


@dataclass
class CallStats:
    """What one client sent, per endpoint (or per service); safe to read from another thread."""

    requests_by_endpoint: Counter[str] = field(default_factory=Counter)
    retries_by_endpoint: Counter[str] = field(default_factory=Counter)
    rate_limited_by_endpoint: Counter[str] = field(default_factory=Counter)
    # Seconds slept before retries, or at the server's request.
    waited_s_by_endpoint: Counter[str] = field(default_factory=Counter)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def add(self, counter: str, endpoint: str, amount: float = 1) -> None:
        with self._lock:
            getattr(self, counter)[endpoint] += amount

    def count_request(self, endpoint: str) -> None:
        self.add("requests_by_endpoint", endpoint)

    def count_rate_limited(self, endpoint: str) -> None:
        self.add("rate_limited_by_endpoint", endpoint)

    def count_wait(self, endpoint: str, seconds: float) -> None:
        self.add("waited_s_by_endpoint", endpoint, seconds)

    def count_retry(self, endpoint: str, waited_s: float) -> None:
        with self._lock:
            self.retries_by_endpoint[endpoint] += 1
            self.waited_s_by_endpoint[endpoint] += waited_s

    def total(self, counter: str) -> Any:
        with self._lock:
            return sum(getattr(self, counter).values())

    @property
    def retries(self) -> int:
        return int(self.total("retries_by_endpoint"))

    @property
    def rate_limited(self) -> int:
        return int(self.total("rate_limited_by_endpoint"))

    @property
    def seconds_waited(self) -> float:
        return float(self.total("waited_s_by_endpoint"))

    def as_metadata(self) -> dict[str, int | float | str]:
        with self._lock:
            return {
                "api_requests": int(self.total("requests_by_endpoint")),
                "api_retries": self.retries,
                "api_rate_limited": self.rate_limited,
                "seconds_waited": round(self.seconds_waited, 3),
            }


def retrying(
    stats: CallStats,
    endpoint: str,
    *,
    max_attempts: int,
    backoff_cap_s: float = BACKOFF_CAP_S,
    max_wait_s: float = MAX_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    stop: Stop | None = None,
) -> Retrying:
    """Retries one request: retryable errors only, full-jitter backoff, our typed error re-raised.

    `stop` replaces `stop_after_attempt(max_attempts)` for a client with rules of its own.
    """
    backoff = wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_S, max=backoff_cap_s)

    def wait(state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, ApiError) and err.retry_after_s is not None:
            return min(err.retry_after_s, max_wait_s)
        return backoff(state)

    return Retrying(
        retry=retry_if_exception(_is_retryable),
        wait=wait,
        stop=stop or stop_after_attempt(max_attempts),
        sleep=sleep,
        before_sleep=lambda state: stats.count_retry(endpoint, state.upcoming_sleep),
        reraise=True,
    )


def send(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    peer: str,
    transient: Callable[[str], ApiError],
    **kwargs: Any,
) -> httpx.Response:
    """`http.request`, a transport error raised as `transient("<FailureClass> talking to peer")`.

    The message names the failure class only: httpx messages can echo the request.
    """
    try:
        return http.request(method, url, **kwargs)
    except httpx.TransportError as err:
        raise transient(f"{type(err).__name__} talking to {peer}") from err

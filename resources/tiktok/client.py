"""HTTP client for TikTok's Display API v2 (user info, video list, video query).

One HTTP request is the retry unit. Before every attempt the request takes its place in the shared
per-endpoint `RateBudget` (proactive) and asks the `CircuitBreaker` whether the endpoint is usable.
Transport errors, 429 and 5xx are retried with full-jitter exponential backoff and a cap
(tenacity); an `access_token_invalid` answer refreshes the token once through the connection's
`TokenSource` and repeats the same request, so a token that expires in the middle of pagination
resumes that very page. Every call, 429 and second waited is counted for Dagster metadata.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from resources.tiktok.breaker import CircuitBreaker
from resources.tiktok.errors import AuthExpired, TikTokError, TransientError
from resources.tiktok.models import TikTokUser, TikTokVideo, VideoPage, parse_user, parse_video_page
from resources.tiktok.pagination import PageWalk
from resources.tiktok.responses import classify_response

DEFAULT_BASE_URL = "https://open.tiktokapis.com"
REQUEST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
DEFAULT_TIMEOUT = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
MAX_ATTEMPTS = 6
BACKOFF_MULTIPLIER_S = 1.0
BACKOFF_CAP_S = 30.0
MAX_PAGE_SIZE = 20  # /v2/video/list/ max_count and /v2/video/query/ ids per request
USER_AGENT = "tiktok-crm-sync/0.1 (+https://github.com/tiktok-crm-sync)"


class TokenSource(Protocol):
    """Hands out the connection's access token and refreshes it (single-flight) when rejected."""

    def access_token(self) -> str: ...

    def refresh(self, rejected_token: str) -> str: ...


class RateBudget(Protocol):
    """Proactive per-endpoint budget: `acquire` blocks until a request may go, returns the wait.

    A budget whose store is unreachable raises `ConnectionError`; the request is then retried.
    """

    def acquire(self, endpoint: str) -> float: ...


@dataclass
class CallStats:
    """What one client did, reported as asset metadata."""

    requests: Counter[str] = field(default_factory=Counter)
    rate_limited_by_endpoint: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    refreshes: int = 0
    budget_wait_s: float = 0.0
    backoff_wait_s: float = 0.0
    circuit_opened: int = 0

    @property
    def rate_limited(self) -> int:
        return sum(self.rate_limited_by_endpoint.values())

    @property
    def seconds_waited(self) -> float:
        return self.budget_wait_s + self.backoff_wait_s

    def as_metadata(self) -> dict[str, int | float | str]:
        return {
            "api_requests": sum(self.requests.values()),
            "api_rate_limited": self.rate_limited,
            "api_retries": self.retries,
            "token_refreshes": self.refreshes,
            "seconds_waited": round(self.seconds_waited, 3),
            "seconds_waited_for_budget": round(self.budget_wait_s, 3),
            "seconds_waited_in_backoff": round(self.backoff_wait_s, 3),
            "api_requests_by_endpoint": _by_endpoint(self.requests),
            "api_rate_limited_by_endpoint": _by_endpoint(self.rate_limited_by_endpoint),
            "circuit_opened": self.circuit_opened,
        }


def _by_endpoint(counts: Counter[str]) -> str:
    return ", ".join(f"{name}={count}" for name, count in sorted(counts.items())) or "none"


def _is_retryable(err: BaseException) -> bool:
    return isinstance(err, TikTokError) and err.retryable


class TikTokClient:
    def __init__(
        self,
        tokens: TokenSource,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.Client | None = None,
        budget: RateBudget | None = None,
        breaker: CircuitBreaker | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_cap_s: float = BACKOFF_CAP_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._tokens = tokens
        self._owns_http = http is None  # a shared pool is closed by whoever opened it
        self._http = http or httpx.Client(timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self._breaker = breaker or CircuitBreaker()
        self._max_attempts = max_attempts
        self._backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self.stats = CallStats()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def get_user(self, fields: Iterable[str]) -> TikTokUser:
        data = self._call("user_info", "GET", "/v2/user/info/", fields=fields)
        return parse_user(data.get("user"))

    def list_videos(
        self, fields: Iterable[str], *, cursor: int | None = None, max_count: int = MAX_PAGE_SIZE
    ) -> VideoPage:
        body: dict[str, Any] = {"max_count": max_count}
        if cursor:
            body["cursor"] = cursor
        data = self._call("video_list", "POST", "/v2/video/list/", fields=fields, json=body)
        return parse_video_page(data)

    def iter_videos(
        self, fields: Iterable[str], *, walk: PageWalk | None = None
    ) -> Iterator[TikTokVideo]:
        """Newest first, across pages, until a hard stop (see `PageWalk`)."""
        walk = walk or PageWalk()
        fields = tuple(fields)
        cursor: int | None = None
        while True:
            page = self.list_videos(fields, cursor=cursor)
            yield from walk.accept(page, requested=cursor)
            if walk.stopped:
                return
            cursor = walk.next_cursor

    def query_videos(self, video_ids: Iterable[str], fields: Iterable[str]) -> list[TikTokVideo]:
        """Current metrics for known videos, 20 ids per request; unknown ids are simply absent."""
        return [video for batch in self.iter_query_batches(video_ids, fields) for video in batch]

    def iter_query_batches(
        self, video_ids: Iterable[str], fields: Iterable[str]
    ) -> Iterator[tuple[list[str], list[TikTokVideo]]]:
        """(asked ids, videos found) per request of at most 20 ids, streamed."""
        ids, fields = iter(video_ids), tuple(fields)
        while batch := list(islice(ids, MAX_PAGE_SIZE)):
            body = {"filters": {"video_ids": batch}}
            data = self._call("video_query", "POST", "/v2/video/query/", fields=fields, json=body)
            yield batch, list(parse_video_page(data).videos)

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fields: Iterable[str],
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        # Token calls (a refresh ahead of expiry, or after a rejection) are retried like requests.
        token = self._retrying()(self._tokens.access_token)
        try:
            return self._send_with_retries(endpoint, method, path, ",".join(fields), json, token)
        except AuthExpired:
            # Refresh once and repeat the same request; a second rejection is final.
            token = self._retrying()(self._tokens.refresh, token)
            self.stats.refreshes += 1
            return self._send_with_retries(endpoint, method, path, ",".join(fields), json, token)

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_S, max=self._backoff_cap_s),
            stop=stop_after_attempt(self._max_attempts),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )

    def _send_with_retries(
        self,
        endpoint: str,
        method: str,
        path: str,
        fields: str,
        json: dict[str, Any] | None,
        token: str,
    ) -> dict[str, Any]:
        return self._retrying()(self._send_once, endpoint, method, path, fields, json, token)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        self.stats.backoff_wait_s += state.upcoming_sleep

    def _send_once(
        self,
        endpoint: str,
        method: str,
        path: str,
        fields: str,
        json: dict[str, Any] | None,
        token: str,
    ) -> dict[str, Any]:
        self._breaker.check(endpoint)
        if self._budget is not None:
            try:
                self.stats.budget_wait_s += self._budget.acquire(endpoint)
            except ConnectionError as err:  # the budget's store (Redis, a database) is down
                raise TransientError(f"{endpoint}: {err}", endpoint=endpoint) from err
        self.stats.requests[endpoint] += 1
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        try:
            try:
                response = self._http.request(
                    method,
                    self._base_url + path,
                    params={"fields": fields},
                    json=json,
                    headers=headers,
                )
            except httpx.TransportError as err:
                # The message names the failure class only: httpx messages can echo the request.
                raise TransientError(
                    f"{endpoint}: {type(err).__name__} talking to TikTok", endpoint=endpoint
                ) from err
            data = classify_response(response, endpoint)
        except TikTokError as err:
            err.redact(token)  # in case TikTok's error message repeats the token it got
            if err.kind == "rate_limited":
                self.stats.rate_limited_by_endpoint[endpoint] += 1
            if err.retryable and self._breaker.failure(endpoint, err):
                self.stats.circuit_opened += 1
            raise
        self._breaker.success(endpoint)
        return data

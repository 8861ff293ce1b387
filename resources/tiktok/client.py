"""HTTP client for TikTok's Display API v2 (user info, video list, video query).

One HTTP request is the retry unit. Every attempt, in this order: asks the `CircuitBreaker` whether
the endpoint is usable, takes its place in the shared per-endpoint `RateBudget` (which may wait),
then takes the connection's access token, checked for freshness only now, after any wait (a
token that expired while the request queued is refreshed, single-flight, before it is sent).

- 429: the budget is told, and lowers the endpoint's rate for every process sharing it; the
  request is retried with full-jitter backoff until TikTok has refused it for longer than
  `rate_limit_patience_s` (time spent queueing in our own budget does not count).
- transport errors and 5xx: retried with full-jitter exponential backoff, `max_attempts` in all.
- 401 `access_token_invalid`: the token is refreshed once and the same request repeated, so a
  token rejected in the middle of pagination resumes that very page.

The backoff, the retry decision and the retry counting are the shared policy of
`resources.http_base` (the CRM clients use it too); the 429 patience, the circuit breaker, the
budget and the token check are this client's own, as the policy's `stop` and the attempt itself.

Everything is counted per endpoint in `CallStats` for Dagster metadata. A client belongs to one
thread; its stats are nevertheless safe to read from another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

import httpx
from tenacity import RetryCallState, Retrying

from resources.http_base import BACKOFF_CAP_S, USER_AGENT, retrying, send
from resources.ratelimit.budget import Admission
from resources.tiktok.breaker import CircuitBreaker
from resources.tiktok.call_stats import CallStats
from resources.tiktok.errors import AuthExpired, RateLimited, TikTokError, TransientError
from resources.tiktok.models import TikTokUser, TikTokVideo, VideoPage, parse_user, parse_video_page
from resources.tiktok.pagination import PageWalk
from resources.tiktok.responses import classify_response

DEFAULT_BASE_URL = "https://open.tiktokapis.com"
REQUEST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
DEFAULT_TIMEOUT = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
MAX_ATTEMPTS = 6  # transient failures (5xx, transport) per request
# How long TikTok may keep refusing one request (429) before the run fails: several of its
# one-minute windows, so a limit lower than configured is learned and waited out, not fatal.
RATE_LIMIT_PATIENCE_S = 300.0
MAX_PAGE_SIZE = 20  # /v2/video/list/ max_count and /v2/video/query/ ids per request
TOKEN_ENDPOINT = "oauth_token"


class TokenSource(Protocol):
    """Hands out the connection's access token, refreshed (single-flight) when expiring or rejected.

    `refresh_calls` counts the refreshes TikTok granted through this source.
    """

    refresh_calls: int

    def access_token(self) -> str: ...

    def refresh(self, rejected_token: str) -> str: ...


class RateBudget(Protocol):
    """Proactive, adaptive per-endpoint budget (`resources.ratelimit.budget.ScopedBudget`).

    `admit` blocks until a request may go; a budget whose store is unreachable raises
    `ConnectionError`, and the request is then retried. `rate_limited` reports a 429 for an
    admitted request and returns the endpoint's limit per minute after it.
    """

    def admit(self, endpoint: str) -> Admission: ...

    def rate_limited(self, admission: Admission) -> int: ...


@dataclass
class _Request:
    """One logical request and what its attempts learned."""

    endpoint: str
    method: str
    path: str
    fields: str
    json: dict[str, Any] | None
    token: str = ""  # the token the last attempt sent
    refused_since: float | None = None  # when TikTok first answered 429
    queued_since_refusal_s: float = 0.0  # time spent in our own budget since then
    transient_failures: int = 0


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
        rate_limit_patience_s: float = RATE_LIMIT_PATIENCE_S,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._owns_http = http is None  # a shared pool is closed by whoever opened it
        self._http = http or httpx.Client(timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self._breaker = breaker or CircuitBreaker()
        self._max_attempts = max_attempts
        self._backoff_cap_s = backoff_cap_s
        self._patience_s = rate_limit_patience_s
        self._sleep = sleep
        self._now = now
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
        request = _Request(endpoint, method, path, ",".join(fields), json)
        try:
            try:
                return self._with_retries(request)
            except AuthExpired:
                # Refresh once and repeat the same request; a second rejection is final. The
                # repeat checks freshness again after its own budget wait, like every attempt.
                self._token_call(endpoint, self._tokens.refresh, request.token)
                request = _Request(endpoint, method, path, request.fields, json)
                return self._with_retries(request)
        except RateLimited as err:
            raise self._gave_up(err, request) from None

    def _with_retries(self, request: _Request) -> dict[str, Any]:
        policy = self._retrying(request.endpoint, lambda state: self._should_stop(request, state))
        return policy(self._attempt, request)

    def _retrying(
        self, endpoint: str, stop: Callable[[RetryCallState], bool] | None = None
    ) -> Retrying:
        """The shared policy, its retries counted under `endpoint`; `stop` adds TikTok's rules."""
        return retrying(
            self.stats,
            endpoint,
            max_attempts=self._max_attempts,
            backoff_cap_s=self._backoff_cap_s,
            sleep=self._sleep,
            stop=stop,
        )

    def _should_stop(self, request: _Request, state: RetryCallState) -> bool:
        """Transient failures stop after `max_attempts`; 429s after the patience, in time."""
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, RateLimited):
            return self._refused_for(request) >= self._patience_s
        request.transient_failures += 1
        return request.transient_failures >= self._max_attempts

    def _refused_for(self, request: _Request) -> float:
        if request.refused_since is None:
            return 0.0
        return self._now() - request.refused_since - request.queued_since_refusal_s

    def _token_call(self, endpoint: str, call: Callable[..., str], *args: str) -> str:
        """A token call (a refresh ahead of expiry or after a rejection), retried like requests."""
        before = self._tokens.refresh_calls
        try:
            return self._retrying(TOKEN_ENDPOINT)(call, *args)
        finally:
            refreshed = self._tokens.refresh_calls - before
            if refreshed:
                self.stats.add("refreshes_by_endpoint", endpoint, refreshed)

    def _admit(self, request: _Request) -> Admission | None:
        if self._budget is None:
            return None
        try:
            admission = self._budget.admit(request.endpoint)
        except ConnectionError as err:  # the budget's store (Redis, a database) is down
            raise TransientError(f"{request.endpoint}: {err}", endpoint=request.endpoint) from err
        if request.refused_since is not None:
            request.queued_since_refusal_s += admission.waited_s
        self.stats.admitted(admission)
        return admission

    def _attempt(self, request: _Request) -> dict[str, Any]:
        endpoint = request.endpoint
        self._breaker.check(endpoint)
        admission = self._admit(request)
        token = request.token = self._token_call(endpoint, self._tokens.access_token)
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        # Counted here, at the send: an attempt stopped earlier (no token, the budget's store
        # down) never reached TikTok, and the summary reports what TikTok saw.
        self.stats.count_request(endpoint)

        def transient(failure: str) -> TransientError:
            return TransientError(f"{endpoint}: {failure}", endpoint=endpoint)

        try:
            response = send(
                self._http,
                request.method,
                self._base_url + request.path,
                peer="TikTok",
                transient=transient,
                params={"fields": request.fields},
                json=request.json,
                headers=headers,
            )
            data = classify_response(response, endpoint)
        except TikTokError as err:
            err.redact(token)  # in case TikTok's error message repeats the token it got
            self._failed(request, admission, err)
            raise
        self._breaker.success(endpoint)
        return data

    def _failed(self, request: _Request, admission: Admission | None, err: TikTokError) -> None:
        endpoint = request.endpoint
        if isinstance(err, RateLimited):
            self.stats.count_rate_limited(endpoint)
            if request.refused_since is None:
                request.refused_since = self._now()
            if admission is not None and self._budget is not None:
                # A store that is down is reported by the next attempt's admission.
                with suppress(ConnectionError):
                    self.stats.limit_lowered(endpoint, self._budget.rate_limited(admission))
        elif isinstance(err, AuthExpired):
            self.stats.add("token_rejections_by_endpoint", endpoint)
        if err.retryable and self._breaker.failure(endpoint, err):
            self.stats.opened_circuit()

    def _gave_up(self, err: RateLimited, request: _Request) -> RateLimited:
        limit = self.stats.limit_by_endpoint.get(request.endpoint)
        configured = self.stats.configured_by_endpoint.get(request.endpoint)
        return err.gave_up(self._refused_for(request), self._patience_s, limit, configured)

"""HTTP client for TikTok's Display API v2 (user info, video list, video query).

One HTTP request is the retry unit. Transport errors, 429 and 5xx are retried with full-jitter
exponential backoff and a cap (tenacity); an `access_token_invalid` answer refreshes the token once
through the connection's `TokenSource` and repeats the same request, so a token that expires in the
middle of pagination resumes that very page. Every call is counted for Dagster metadata.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from resources.tiktok.errors import AuthExpired, TikTokError, TransientError
from resources.tiktok.models import TikTokUser, TikTokVideo, VideoPage, parse_user, parse_video_page
from resources.tiktok.pagination import PageWalk
from resources.tiktok.responses import classify_response

DEFAULT_BASE_URL = "https://open.tiktokapis.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
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
    """Proactive per-endpoint budget: `acquire` blocks until a request may go, returns the wait."""

    def acquire(self, endpoint: str) -> float: ...


@dataclass
class CallStats:
    """What one client did, reported as asset metadata."""

    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    retries: int = 0
    refreshes: int = 0
    seconds_waited: float = 0.0

    def as_metadata(self) -> dict[str, int | float]:
        return {
            "api_requests": sum(self.requests.values()),
            "api_rate_limited": self.rate_limited,
            "api_retries": self.retries,
            "token_refreshes": self.refreshes,
            "seconds_waited": round(self.seconds_waited, 3),
        }


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
        max_attempts: int = MAX_ATTEMPTS,
        backoff_cap_s: float = BACKOFF_CAP_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._tokens = tokens
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self._max_attempts = max_attempts
        self._backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self.stats = CallStats()

    def close(self) -> None:
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
            yield from walk.accept(page)
            if walk.stopped:
                return
            cursor = page.cursor

    def query_videos(self, video_ids: Iterable[str], fields: Iterable[str]) -> list[TikTokVideo]:
        """Current metrics for known videos, 20 ids per request; unknown ids are simply absent."""
        ids, fields, found = list(video_ids), tuple(fields), []
        for start in range(0, len(ids), MAX_PAGE_SIZE):
            body = {"filters": {"video_ids": ids[start : start + MAX_PAGE_SIZE]}}
            data = self._call("video_query", "POST", "/v2/video/query/", fields=fields, json=body)
            found.extend(parse_video_page(data).videos)
        return found

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fields: Iterable[str],
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        token = self._tokens.access_token()
        try:
            return self._send_with_retries(endpoint, method, path, ",".join(fields), json, token)
        except AuthExpired:
            # Refresh once and repeat the same request; a second rejection is final.
            token = self._tokens.refresh(token)
            self.stats.refreshes += 1
            return self._send_with_retries(endpoint, method, path, ",".join(fields), json, token)

    def _send_with_retries(
        self,
        endpoint: str,
        method: str,
        path: str,
        fields: str,
        json: dict[str, Any] | None,
        token: str,
    ) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_S, max=self._backoff_cap_s),
            stop=stop_after_attempt(self._max_attempts),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        return retrying(self._send_once, endpoint, method, path, fields, json, token)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        self.stats.seconds_waited += state.upcoming_sleep

    def _send_once(
        self,
        endpoint: str,
        method: str,
        path: str,
        fields: str,
        json: dict[str, Any] | None,
        token: str,
    ) -> dict[str, Any]:
        if self._budget is not None:
            self.stats.seconds_waited += self._budget.acquire(endpoint)
        self.stats.requests[endpoint] += 1
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        try:
            response = self._http.request(
                method, self._base_url + path, params={"fields": fields}, json=json, headers=headers
            )
        except httpx.TransportError as err:
            # The message names the failure class only: httpx messages can echo request details.
            raise TransientError(
                f"{endpoint}: {type(err).__name__} talking to TikTok", endpoint=endpoint
            ) from err
        try:
            return classify_response(response, endpoint)
        except TikTokError as err:
            if err.kind == "rate_limited":
                self.stats.rate_limited += 1
            raise

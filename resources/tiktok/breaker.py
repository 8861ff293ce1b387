"""A small circuit breaker per endpoint: after repeated retryable failures, stop calling.

Retries handle a blip; a breaker handles an endpoint that keeps failing. After `threshold`
consecutive transient answers (5xx, transport errors) on one endpoint the circuit opens: calls to
that endpoint fail at once with `CircuitOpen` (never silently) until `cooldown_s` has passed. Then
one call may probe: a success closes the circuit, a failure opens it again at once. One breaker
belongs to one client by default; clients that share an app may share one.

429s are not failures here: they say "slower", not "broken". The shared request budget lowers the
endpoint's rate and the client waits them out, up to its patience (`resources.ratelimit.budget`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from resources.tiktok.errors import CircuitOpen, TikTokError

BREAKER_THRESHOLD = 5  # below MAX_ATTEMPTS, so one hopeless request stops early
BREAKER_COOLDOWN_S = 60.0  # one full rate-limit window


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = BREAKER_THRESHOLD,
        cooldown_s: float = BREAKER_COOLDOWN_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("the circuit breaker threshold must be >= 1")
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._now = now
        self._lock = threading.Lock()
        self._failures: Counter[str] = Counter()
        self._last_kind: dict[str, str] = {}
        self._open_until: dict[str, float] = {}
        self.opened: Counter[str] = Counter()  # how often each endpoint's circuit opened

    def check(self, endpoint: str) -> None:
        """Raise `CircuitOpen` while the endpoint's circuit is open."""
        with self._lock:
            remaining = self._open_until.get(endpoint, 0.0) - self._now()
            if remaining <= 0:
                return
            kind = self._last_kind.get(endpoint, "transient")
            failures = self._failures[endpoint]
        raise CircuitOpen(
            f"{endpoint}: circuit open after {failures} consecutive {kind} answers from TikTok; "
            f"calls resume in {remaining:.0f}s. Nothing was dropped: this run fails and can be "
            "re-run",
            kind=kind,
            endpoint=endpoint,
        )

    def success(self, endpoint: str) -> None:
        with self._lock:
            self._failures[endpoint] = 0
            self._open_until.pop(endpoint, None)

    def failure(self, endpoint: str, err: TikTokError) -> bool:
        """Count a retryable failure; True when it is the one that opened the circuit."""
        if err.kind == "rate_limited":
            return False  # the adaptive budget answers refusals, not the breaker
        with self._lock:
            now = self._now()
            self._failures[endpoint] += 1
            self._last_kind[endpoint] = err.kind
            if self._failures[endpoint] < self._threshold:
                return False
            was_closed = self._open_until.get(endpoint, 0.0) <= now
            self._open_until[endpoint] = now + self._cooldown_s
            if was_closed:
                self.opened[endpoint] += 1  # count openings, not failures while open
            return was_closed

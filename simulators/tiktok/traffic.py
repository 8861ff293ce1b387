"""Rate windows, queued faults and request statistics, each guarded by its own lock."""

from __future__ import annotations

import threading
from collections import defaultdict, deque

ENDPOINTS: tuple[str, ...] = (
    "oauth_token",
    "oauth_revoke",
    "authorize",
    "user_info",
    "video_list",
    "video_query",
)
DISPLAY_ENDPOINTS = frozenset({"user_info", "video_list", "video_query"})
RATE_WINDOW_SECONDS = 60.0


class RateLimiter:
    """Sliding 60-second window per (endpoint, key), measured with the injected clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        # Every admission per endpoint (all keys), for benchmarks: when requests went, and the
        # most any window held. Kept until cleared; a benchmark's fleet is thousands, not more.
        self._admitted: dict[str, list[float]] = defaultdict(list)

    def admit(self, endpoint: str, key: str, now: float, limit: int | None) -> bool:
        if limit is None:
            return True
        with self._lock:
            window = self._windows[(endpoint, key)]
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                # A rejected request is not recorded: a client that backs off regains capacity
                # as soon as old requests leave the window, whatever it retried meanwhile.
                return False
            window.append(now)
            self._admitted[endpoint].append(now)
            return True

    def admitted(self) -> dict[str, list[float]]:
        """The simulator's times of every admitted request per endpoint, in order."""
        with self._lock:
            return {endpoint: list(times) for endpoint, times in self._admitted.items()}

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._admitted.clear()


def most_in_window(times: list[float], window_s: float = RATE_WINDOW_SECONDS) -> int:
    """The most of `times` any window holds, counted as `RateLimiter` counts: (t - window, t]."""
    ordered, start, most = sorted(times), 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


class FaultQueue:
    """Faults waiting for the next requests of each endpoint, first in first out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[str]] = defaultdict(deque)

    def push(self, endpoint: str, fault: str, count: int) -> None:
        with self._lock:
            self._queues[endpoint].extend([fault] * count)

    def pop(self, endpoint: str) -> str | None:
        with self._lock:
            queue = self._queues[endpoint]
            return queue.popleft() if queue else None

    def pending(self) -> dict[str, list[str]]:
        with self._lock:
            return {endpoint: list(queue) for endpoint, queue in self._queues.items() if queue}

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


class Stats:
    """Per-endpoint counts for tests and benchmarks ("did the client back off?")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counts = {
                endpoint: {"requests": 0, "rate_limited": 0, "errors": 0} for endpoint in ENDPOINTS
            }
            self._refreshes = 0

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._counts[endpoint]["requests"] += 1

    def outcome(self, endpoint: str, status: int, reset: bool) -> None:
        with self._lock:
            if status == 429:
                self._counts[endpoint]["rate_limited"] += 1
            elif reset or status >= 400:
                self._counts[endpoint]["errors"] += 1

    def refreshed(self) -> None:
        with self._lock:
            self._refreshes += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            result: dict[str, object] = {name: dict(row) for name, row in self._counts.items()}
            result["refreshes"] = self._refreshes
            return result

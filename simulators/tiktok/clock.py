"""A clock that only moves when told to, for tests and reproducible demos."""

from __future__ import annotations

import threading

DEFAULT_START = 1_767_268_800.0  # 2026-01-01T12:00:00Z, just after the data anchor


class ManualClock:
    """Callable like time.time; `advance` moves it. Thread-safe, since handlers read it."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._lock = threading.Lock()
        self._now = start

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now

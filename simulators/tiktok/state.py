"""Everything one running simulator remembers, behind locks so handler threads can share it."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import defaultdict

from simulators.tiktok.auth import AuthState
from simulators.tiktok.config import DATA_KNOBS, SimulatorConfig
from simulators.tiktok.data import Catalog, SimAccount
from simulators.tiktok.responses import make_log_id
from simulators.tiktok.text import seeded_hex
from simulators.tiktok.traffic import DISPLAY_ENDPOINTS, FaultQueue, RateLimiter, Stats

# Separate stream from the token RNG, so turning latency on does not change the tokens.
NOISE_STREAM = 0x5EED


class SimState:
    """Config, catalog, auth store, traffic counters and deletions of one simulator."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._lock = threading.RLock()
        self._config = config
        self._catalog = Catalog(config)
        self._deleted: dict[int, set[int]] = defaultdict(set)
        self._noise = random.Random(config.seed ^ NOISE_STREAM)
        self._serial = 0
        self.auth = AuthState(config.seed)
        self.rate = RateLimiter()
        self.faults = FaultQueue()
        self.stats = Stats()

    @property
    def config(self) -> SimulatorConfig:
        with self._lock:
            return self._config

    @property
    def catalog(self) -> Catalog:
        with self._lock:
            return self._catalog

    def set(self, **knobs: object) -> SimulatorConfig:
        """Swap the config; knobs that shape the data rebuild the catalog (and forget deletions)."""
        with self._lock:
            updated = dataclasses.replace(self._config, **knobs)  # type: ignore[arg-type]
            if any(getattr(updated, k) != getattr(self._config, k) for k in DATA_KNOBS):
                self._catalog = Catalog(updated)
                self._deleted.clear()
            self._config = updated
            return updated

    def now(self) -> float:
        return self.config.clock()

    def next_log_id(self, now: float) -> str:
        with self._lock:
            self._serial += 1
            return make_log_id(now, seeded_hex(self._config.seed, "log", self._serial, length=20))

    def draw_noise(self, endpoint: str) -> tuple[float, bool]:
        """(latency in seconds, whether to fail with a random 500) for one request."""
        with self._lock:
            low, high = self._config.latency_ms
            latency = self._noise.uniform(low, high) / 1000.0 if high else 0.0
            rate = self._config.error_rate
            failing = endpoint in DISPLAY_ENDPOINTS and rate > 0 and self._noise.random() < rate
            return latency, failing

    def delete_video(self, account: int, index: int) -> None:
        with self._lock:
            self._deleted[account].add(index)

    def deleted(self, account: int) -> frozenset[int]:
        with self._lock:
            return frozenset(self._deleted.get(account, ()))

    def visible_count(self, account: int) -> int:
        with self._lock:
            return self._catalog.visible_count(account, self._deleted.get(account, set()))

    def accounts(self) -> tuple[SimAccount, ...]:
        """The creators with video_count reduced by deleted videos."""
        with self._lock:
            return tuple(
                dataclasses.replace(account, video_count=self.visible_count(account.index))
                for account in self._catalog.accounts
            )

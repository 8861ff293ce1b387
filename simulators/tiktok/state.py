"""Everything one running simulator remembers, behind locks so handler threads can share it."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import defaultdict
from types import MappingProxyType

from simulators.tiktok.auth import AuthState
from simulators.tiktok.clock import ManualClock
from simulators.tiktok.config import DATA_KNOBS, INDEX_BITS, SimulatorConfig
from simulators.tiktok.data import Catalog, SimAccount
from simulators.tiktok.responses import make_log_id
from simulators.tiktok.text import seeded_hex
from simulators.tiktok.traffic import DISPLAY_ENDPOINTS, FaultQueue, RateLimiter, Stats
from simulators.tiktok.videos import ID_DIGITS, AccountVideos, Changes, pack_video_id

# Separate stream from the token RNG, so turning latency on does not change the tokens.
NOISE_STREAM = 0x5EED


class SimState:
    """Config, catalog, auth store, traffic counters and the creators' changes of one simulator.

    The changes (posts, caption edits, deletions) are kept per account, O(changes); a rebuilt
    catalog forgets them.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self._lock = threading.RLock()
        self._config = config
        self._catalog = Catalog(config)
        self._deleted: dict[int, set[int]] = defaultdict(set)
        self._posted: dict[int, tuple[int, ...]] = {}  # replaced on write: a snapshot is O(1)
        self._captions: dict[int, dict[int, str]] = defaultdict(dict)
        # Seconds added to a clock that cannot be moved (time.time) by advance_clock.
        self._offset = 0.0
        self.days_advanced = 0
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
    def lock(self) -> threading.RLock:
        """Held to make several changes one step (a simulated day) for the request threads."""
        return self._lock

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
                self._posted.clear()
                self._captions.clear()
            self._config = updated
            return updated

    def now(self) -> float:
        with self._lock:
            clock, offset = self._config.clock, self._offset
        return clock() + offset

    def advance_clock(self, seconds: float) -> float:
        """Move this simulator's now: a ManualClock moves itself, any other clock gets an offset."""
        with self._lock:
            clock = self._config.clock
            if isinstance(clock, ManualClock):
                clock.advance(seconds)
            else:
                self._offset += seconds
            return self.now()

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

    def videos(self, account: int) -> AccountVideos:
        """A consistent snapshot of one account's videos, for one request or one change."""
        with self._lock:
            changes = Changes(
                posted=self._posted.get(account, ()),
                captions=MappingProxyType(dict(self._captions.get(account, {}))),
                deleted=frozenset(self._deleted.get(account, ())),
            )
            return AccountVideos(self._catalog, account, changes)

    def post_video(self, account: int, create_time: int) -> str:
        """Append a video newer than every other of the account; returns its id."""
        with self._lock:
            videos = self.videos(account)
            newest = videos.newest_time()
            if newest is not None and create_time <= newest:
                raise ValueError(
                    f"account {account}'s newest video was created at {newest}; "
                    f"a new one needs a later create_time, not {create_time}"
                )
            index = videos.next_index()
            if index >> INDEX_BITS:
                raise ValueError(f"account {account} holds the most videos an id can number")
            video_id = pack_video_id(create_time, account, index)
            if len(video_id) != ID_DIGITS:
                raise ValueError(f"create_time {create_time} gives no 19-digit TikTok video id")
            self._posted[account] = (*self._posted.get(account, ()), create_time)
            return video_id

    def edit_caption(self, account: int, index: int, text: str) -> None:
        with self._lock:
            self._captions[account][index] = text

    def visible_count(self, account: int) -> int:
        with self._lock:
            return self.videos(account).visible_count()

    def accounts(self) -> tuple[SimAccount, ...]:
        """The creators with video_count reduced by deleted videos."""
        with self._lock:
            return tuple(
                dataclasses.replace(account, video_count=self.visible_count(account.index))
                for account in self._catalog.accounts
            )

"""A request budget per TikTok endpoint, shared by every run, process and machine, that adapts.

TikTok documents 600 requests per endpoint per sliding minute (tiktok-api.md section 7) but may
grant an app less, and whether it counts per app or per user token is unconfirmed (section 12.4).
So the configured limits (TIKTOK_RATE_LIMITS) are a ceiling, and the budget learns the rest:

- Proactive: every request first takes a place in a sliding-window log kept in a store every
  process sees (`resources.ratelimit.stores`: a SQLite file, Redis or PostgreSQL): at most
  `(1 - margin)` of the limit in any span of TikTok's minute plus a latency allowance. A full
  window goes at once, the next requests as the first age out (docs/extraction.md, "The request
  budget", says why that is compliant and why the allowance).
- Adaptive: a 429 for a request the budget admitted cuts that key's limit for every process
  sharing the store (`limit_after_refusal`); the limit then recovers slowly (`limit_at`). The
  rule and why: docs/extraction.md, "The adaptive budget".

Threads of one process queue on a lock per key and only one of them at a time talks to the store
about admissions; the store arbitrates between processes and queues them too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyrate_limiter import AbstractBucket, Rate, RateItem

from resources.ratelimit.backends import open_store
from resources.ratelimit.stores import BudgetConfigError, LearnedLimit, redact_url_safe

__all__ = ["BudgetConfigError", "BudgetUnavailable", "RequestBudget", "parse_limits"]

ENDPOINTS = ("user_info", "video_list", "video_query")
DEFAULT_LIMIT_PER_MINUTE = 600
WINDOW_MS = 60_000  # TikTok's sliding minute (tiktok-api.md section 7)
# TikTok counts a request when it arrives, up to this long after the budget stamped it (lock
# wait, token, connect, network): the budget's own window is TikTok's plus this, so any window
# of TikTok's arrivals holds requests stamped within one of ours. Costs 1/61 of the steady rate.
LATENCY_ALLOWANCE_MS = 1_000
SAFETY_MARGIN = 0.02  # room for the rare request slower than the allowance (12 of 600)
LEAK_INTERVAL_S = 10.0  # how often expired entries are deleted from the store
# Entries are deleted only this long after they leave the window: a process whose clock is a
# little behind (or that stamped its request before waiting for the store) still counts them.
LEAK_LAG_MS = 10_000
MIN_WAIT_S = 0.002  # a backend that could not say how long to wait is polled this often
MAX_WAIT_STEP_S = 5.0  # a long wait is re-checked this often: another process may cut the limit
# The adaptive rule (docs/extraction.md explains the choice of each number).
DECREASE_FACTOR = 0.7  # a refusal cuts the limit to at most 70% (CUBIC's beta, RFC 9438)
RECOVERY_HOLD_S = 60.0  # no growth for one TikTok window after a cut: the cut is tested first
RECOVERY_PER_MINUTE = 0.02  # then +2% a minute, compounding: scale-free, whatever TikTok grants
MIN_LIMIT_PER_MINUTE = 1.0
LEARNED_REFRESH_S = 1.0  # how stale a process's view of a limit cut elsewhere may be
CAS_ATTEMPTS = 5
LIMITS_VARIABLE = "TIKTOK_RATE_LIMITS"
LIMITS_HELP = (
    "use ENDPOINT=REQUESTS_PER_MINUTE pairs separated by commas, with ENDPOINT one of "
    f"{', '.join(ENDPOINTS)} and a whole number >= 1, e.g. 'user_info=600,video_list=600'"
)


class BudgetUnavailable(ConnectionError):
    """The store holding the budget did not answer (a transient failure, worth a retry)."""


def parse_limits(raw: str | None, default: int = DEFAULT_LIMIT_PER_MINUTE) -> dict[str, int]:
    """Per-endpoint limits per minute from `user_info=600,video_list=600` (missing ones default)."""
    limits = dict.fromkeys(ENDPOINTS, default)
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, sep, value = (piece.strip() for piece in part.partition("="))
        if not sep or name not in ENDPOINTS or not value.isdigit() or int(value) < 1:
            raise BudgetConfigError(
                f"{LIMITS_VARIABLE}: {part.strip()!r} is invalid; {LIMITS_HELP}"
            )
        limits[name] = int(value)
    return limits


def budget_rates(
    limit_per_minute: int,
    margin: float = SAFETY_MARGIN,
    window_ms: int = WINDOW_MS,
    allowance_ms: int = LATENCY_ALLOWANCE_MS,
) -> list[Rate]:
    """The pyrate-limiter rate: `limit_per_minute` less the margin, in any window-plus-allowance.

    No smoothing: a sliding-window log lets the whole window's capacity go at once, and the next
    requests exactly as the first age out, which is all TikTok's sliding minute asks.
    """
    effective = max(1, math.floor(limit_per_minute * (1.0 - margin)))
    return [Rate(effective, window_ms + allowance_ms)]


def limit_at(learned: LearnedLimit | None, configured: int, now: float) -> float:
    """The limit per minute in force at `now`: the last cut, grown since, never above the ceiling.

    Held for one window after the cut, then +RECOVERY_PER_MINUTE a minute, compounding. Computed
    from the cut alone, so recovery needs no writes and every process agrees on it.
    """
    if learned is None:
        return float(configured)
    minutes = max(0.0, now - learned.cut_at - RECOVERY_HOLD_S) / 60.0
    return min(float(configured), learned.limit * (1.0 + RECOVERY_PER_MINUTE) ** minutes)


def limit_after_refusal(current: float, window_count: float) -> float:
    """The limit after TikTok refused a request admitted with `window_count` before it.

    TikTok let that many through in the same minute and refused the next, so its limit (for us)
    is about `window_count`: cut to it, but by no more than DECREASE_FACTOR at once, because a
    count far below the limit means traffic we cannot see (another client, a window from before a
    restart, per-token counting), which one cut should not turn into a crawl.
    """
    return max(MIN_LIMIT_PER_MINUTE, min(current, max(window_count, DECREASE_FACTOR * current)))


def window_count_at_refusal(counted: int, learned: LearnedLimit | None, now: float) -> float:
    """What TikTok let through: the count now, or the count at a cut less than a window ago if
    lower. Our window also holds requests TikTok refused (its own may not), so while refusals
    pile up each new count overstates TikTok's limit; the first refusal's count is the cleanest.
    """
    if learned is None or learned.seen is None or now - learned.cut_at >= WINDOW_MS / 1000:
        return float(counted)
    return min(float(counted), learned.seen)


@dataclass(frozen=True)
class Admission:
    """One request let through: when (the budget's clock), after how long, under which limit."""

    endpoint: str
    waited_s: float
    admitted_at: float
    limit: int  # requests per minute in force when it was admitted
    configured: int  # the ceiling set in TIKTOK_RATE_LIMITS


@dataclass
class _Slot:
    key: str
    configured: int
    bucket: AbstractBucket
    applied: int  # the limit the bucket's rates enforce now
    lock: threading.Lock = field(default_factory=threading.Lock)  # this process's queue
    state_lock: threading.Lock = field(default_factory=threading.Lock)  # guards the two below
    learned: LearnedLimit | None = None
    learned_read_at: float = -math.inf
    last_leak: float = 0.0


class RequestBudget:
    """Blocks each request until its endpoint's shared budget has room; learns from 429s."""

    def __init__(
        self,
        url: str,
        limits: Mapping[str, int] | None = None,
        *,
        margin: float = SAFETY_MARGIN,
        window_s: float = WINDOW_MS / 1000,
        latency_allowance_s: float = LATENCY_ALLOWANCE_MS / 1000,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        learned_refresh_s: float = LEARNED_REFRESH_S,
    ) -> None:
        if not 0.0 <= margin < 1.0:
            raise BudgetConfigError("the rate budget's safety margin must be within [0, 1)")
        if window_s <= 0 or latency_allowance_s < 0:
            raise BudgetConfigError("the rate budget's window must be > 0, its allowance >= 0")
        self._store = open_store(url)
        self.limits = dict(limits or parse_limits(None))
        self._margin = margin
        # TikTok's window (a test scales it down) and the budget's own: TikTok's plus latency.
        self._window_ms = round(window_s * 1000)
        self._allowance_ms = round(latency_allowance_s * 1000)
        self._now = now  # wall clock: entries are compared across processes and machines
        self._sleep = sleep
        self._learned_refresh_s = learned_refresh_s
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()

    @property
    def display_url(self) -> str:
        return redact_url_safe(self._store.url)

    @property
    def backend(self) -> str:
        return self._store.kind

    def admit(self, endpoint: str, scope: str = "default") -> Admission:
        """Wait until a request to `endpoint` may go.

        Raises BudgetUnavailable when the store fails, BudgetConfigError when it is misconfigured.
        """
        slot = self._slot(endpoint, scope)
        started = self._now()
        with slot.lock:  # one thread per process per key waits on the store; the others queue
            while True:
                now = self._now()
                wait_s = self._try(slot, now)
                if wait_s is None:
                    waited = max(0.0, now - started)
                    return Admission(endpoint, waited, now, slot.applied, slot.configured)
                self._sleep(min(max(wait_s, MIN_WAIT_S), MAX_WAIT_STEP_S))

    def acquire(self, endpoint: str, scope: str = "default") -> float:
        """Wait until a request to `endpoint` may go; the seconds waited."""
        return self.admit(endpoint, scope).waited_s

    def try_acquire(self, endpoint: str, scope: str = "default") -> bool:
        """Take one request from the budget if it has room now; never waits."""
        slot = self._slot(endpoint, scope)
        with slot.lock:
            return self._try(slot, self._now()) is None

    def rate_limited(self, admission: Admission, scope: str = "default") -> int:
        """TikTok refused a request this budget admitted: cut the shared limit; the new limit.

        A refusal of a request admitted under a higher limit than the one now in force is old
        news (a cut since then already answered it) and changes nothing.
        """
        slot = self._slot(admission.endpoint, scope)
        admitted_ms = int(admission.admitted_at * 1000)
        with slot.state_lock:
            with self._store.lock, self._store_errors():
                window_start = admitted_ms - self._window_ms  # TikTok's minute, as it counts
                seen = self._store.count(slot.bucket, window_start, admitted_ms) - 1
            now = self._now()
            learned = slot.learned
            for _ in range(CAS_ATTEMPTS):
                with self._store.lock, self._store_errors():
                    learned = self._store.read_learned(slot.key)
                current = limit_at(learned, slot.configured, now)
                measured = window_count_at_refusal(max(0, seen), learned, now)
                new = limit_after_refusal(current, measured)
                if _whole(current) < admission.limit or new >= current:
                    break
                cut = LearnedLimit(new, now, measured)
                with self._store.lock, self._store_errors():
                    if self._store.swap_learned(slot.key, learned, cut):
                        learned = cut
                        break
            slot.learned, slot.learned_read_at = learned, now
            return _whole(limit_at(learned, slot.configured, now))

    def limit(self, endpoint: str, scope: str = "default") -> int:
        """The limit per minute in force now for `endpoint` (learned, under the ceiling)."""
        slot = self._slot(endpoint, scope)
        return self._current_limit(slot, self._now())

    def scoped(self, scope: str) -> ScopedBudget:
        return ScopedBudget(self, scope)

    def close(self) -> None:
        with self._slots_lock:
            self._store.close([slot.bucket for slot in self._slots.values()])
            self._slots.clear()

    def _current_limit(self, slot: _Slot, now: float) -> int:
        with slot.state_lock:
            if now - slot.learned_read_at >= self._learned_refresh_s:
                with self._store.lock, self._store_errors():
                    slot.learned = self._store.read_learned(slot.key)
                slot.learned_read_at = now
            return _whole(limit_at(slot.learned, slot.configured, now))

    def _try(self, slot: _Slot, now: float) -> float | None:
        """None when admitted, else the seconds until the budget may have room."""
        limit = self._current_limit(slot, now)
        item = RateItem(slot.key, int(now * 1000))
        with self._store.lock, self._store_errors():
            if limit != slot.applied:
                slot.bucket.rates = self._rates(limit)
                slot.applied = limit
            if now - slot.last_leak >= LEAK_INTERVAL_S:
                slot.bucket.leak(item.timestamp - LEAK_LAG_MS)
                slot.last_leak = now
            if slot.bucket.put(item):
                return None
            wait_ms = slot.bucket.waiting(item)
        return max(0, int(wait_ms)) / 1000.0

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        try:
            yield
        except BudgetConfigError:
            raise
        except Exception as err:  # sqlite3, redis, psycopg and pool errors alike
            # The type only: driver messages can echo the URL, password included.
            raise BudgetUnavailable(
                f"the request budget store {self.display_url} failed ({type(err).__name__}); "
                "check that it is reachable (TIKTOK_RATE_LIMIT_URL)"
            ) from err

    def _rates(self, limit: int) -> list[Rate]:
        return budget_rates(limit, self._margin, self._window_ms, self._allowance_ms)

    def _slot(self, endpoint: str, scope: str) -> _Slot:
        key = f"{scope}.{endpoint}"
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                limit = self.limits.get(endpoint, DEFAULT_LIMIT_PER_MINUTE)
                with self._store.lock, self._store_errors():
                    bucket = self._store.open(key, self._rates(limit))
                slot = self._slots[key] = _Slot(key, limit, bucket, applied=limit)
            return slot


def _whole(limit: float) -> int:
    return max(1, math.floor(limit + 1e-9))


@dataclass(frozen=True)
class ScopedBudget:
    """The `RateBudget` one client sees: its app's (or its connection's) share of the budget."""

    budget: RequestBudget
    scope: str

    def admit(self, endpoint: str) -> Admission:
        return self.budget.admit(endpoint, self.scope)

    def acquire(self, endpoint: str) -> float:
        return self.budget.acquire(endpoint, self.scope)

    def rate_limited(self, admission: Admission) -> int:
        return self.budget.rate_limited(admission, self.scope)

    def limit(self, endpoint: str) -> int:
        return self.budget.limit(endpoint, self.scope)

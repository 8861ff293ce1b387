"""A proactive request budget per TikTok endpoint, shared by every run, process and machine.

TikTok allows 600 requests per endpoint per sliding minute (tiktok-api.md section 7); whether that
counts per app or per user token is unconfirmed (section 12.4), so the budget is kept per app by
default, which is safe under both answers. The counting is pyrate-limiter's sliding-window log in
a store every process can see: a SQLite file (one machine, the default), Redis or PostgreSQL
(several machines). Each limit is enforced twice: at `(1 - margin)` of the configured limit per
minute, and smoothed over about a second, so requests leave evenly instead of in a burst that
network jitter could push over TikTok's own window.

Threads of one process queue on a lock per key and only one of them at a time talks to the store,
so waiting costs no store round trips; the store arbitrates between processes.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyrate_limiter import (
    AbstractBucket,
    PostgresBucket,
    Rate,
    RateItem,
    RedisBucket,
    SQLiteBucket,
)
from sqlalchemy.engine import make_url

from resources.database import redact_url

ENDPOINTS = ("user_info", "video_list", "video_query")
DEFAULT_LIMIT_PER_MINUTE = 600
WINDOW_MS = 60_000
SMOOTHING_WINDOW_MS = 1_000
SAFETY_MARGIN = 0.02  # keeps network jitter from pushing a full window over TikTok's limit
LEAK_INTERVAL_S = 10.0  # how often expired entries are deleted from the store
MIN_WAIT_S = 0.002  # a backend that could not say how long to wait is polled this often
LIMITS_HELP = (
    "use ENDPOINT=REQUESTS_PER_MINUTE pairs separated by commas, with ENDPOINT one of "
    f"{', '.join(ENDPOINTS)} and a whole number >= 1, e.g. 'user_info=600,video_list=600'"
)
_TABLE_SAFE = re.compile(r"[^a-z0-9_]")


class BudgetConfigError(ValueError):
    """The budget's URL or limits are malformed; the message says what to write instead."""


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
                f"TIKTOK_RATE_LIMITS: {part.strip()!r} is invalid; {LIMITS_HELP}"
            )
        limits[name] = int(value)
    return limits


def budget_rates(
    limit_per_minute: int, margin: float = SAFETY_MARGIN, smooth: bool = True
) -> list[Rate]:
    """The pyrate-limiter rates enforcing `limit_per_minute` less the margin, smoothed."""
    effective = max(1, math.floor(limit_per_minute * (1.0 - margin)))
    if not smooth:
        return [Rate(effective, WINDOW_MS)]
    burst = max(1, round(effective * SMOOTHING_WINDOW_MS / WINDOW_MS))
    # Floor keeps the smoothing rate's density >= the minute rate's, as pyrate-limiter requires.
    smoothing_ms = math.floor(WINDOW_MS * burst / effective)
    if smoothing_ms >= WINDOW_MS or burst >= effective:
        return [Rate(effective, WINDOW_MS)]
    return [Rate(burst, smoothing_ms), Rate(effective, WINDOW_MS)]


def _table_name(key: str) -> str:
    # Readable, and unique even when two keys differ only in characters SQL names cannot hold.
    digest = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    # Short enough that PostgreSQL's 63-character names keep the digest (with its prefix).
    return f"tiktok_budget_{_TABLE_SAFE.sub('_', key.lower())[:20]}_{digest}"


class _Backend:
    """Opens buckets in one store; `lock` guards this process's use of that store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self._client: Any = None
        backend = url.split(":", 1)[0].split("+", 1)[0].lower()
        if backend not in ("sqlite", "redis", "rediss", "postgresql", "postgres"):
            raise BudgetConfigError(
                f"TIKTOK_RATE_LIMIT_URL {redact_url_safe(url)!r}: use sqlite:///PATH, "
                "redis://HOST:PORT/DB or postgresql://USER@HOST/DB"
            )
        self.kind = {"rediss": "redis", "postgres": "postgresql"}.get(backend, backend)

    def open(self, key: str, rates: list[Rate]) -> AbstractBucket:
        if self.kind == "sqlite":
            path = make_url(self.url).database
            if not path or path == ":memory:":
                raise BudgetConfigError(
                    "TIKTOK_RATE_LIMIT_URL: an in-memory SQLite budget is not shared; "
                    "name a file, e.g. sqlite:////var/lib/tiktok-crm-sync/budget.db"
                )
            # The file lock makes pyrate-limiter's count-then-insert atomic across processes.
            return SQLiteBucket.init_from_file(
                rates, table=_table_name(key), db_path=path, use_file_lock=True
            )
        if self.kind == "redis":
            return RedisBucket.init(rates, self._redis(), f"tiktok-crm-sync:budget:{key}")
        return PostgresBucket(self._postgres_pool(), _table_name(key), rates)

    def _redis(self) -> Any:
        if self._client is None:
            try:
                from redis import Redis
            except ImportError as err:
                raise BudgetConfigError(
                    "TIKTOK_RATE_LIMIT_URL names Redis but the `redis` package is not "
                    "installed: pip install 'redis>=5'"
                ) from err
            self._client = Redis.from_url(self.url)
        return self._client

    def _postgres_pool(self) -> Any:
        if self._client is None:
            try:
                from psycopg_pool import ConnectionPool
            except ImportError as err:
                raise BudgetConfigError(
                    "TIKTOK_RATE_LIMIT_URL names PostgreSQL but `psycopg-pool` is not "
                    "installed: pip install 'psycopg[binary]>=3.2' 'psycopg-pool>=3.2'"
                ) from err
            # libpq wants postgresql://, not SQLAlchemy's postgresql+psycopg://.
            conninfo = make_url(self.url).set(drivername="postgresql")
            self._client = ConnectionPool(
                conninfo.render_as_string(hide_password=False), min_size=1, max_size=4, open=True
            )
        return self._client

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()
        self._client = None


def redact_url_safe(url: str) -> str:
    try:
        return redact_url(url)
    except Exception:  # an unparsable URL may hold a password anywhere: show its scheme only
        return url.split(":", 1)[0] + ":..."


@dataclass
class _Slot:
    bucket: AbstractBucket
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_leak: float = 0.0


class RequestBudget:
    """Blocks each request until its endpoint's shared budget has room; returns seconds waited."""

    def __init__(
        self,
        url: str,
        limits: Mapping[str, int] | None = None,
        *,
        margin: float = SAFETY_MARGIN,
        smooth: bool = True,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0.0 <= margin < 1.0:
            raise BudgetConfigError("the rate budget's safety margin must be within [0, 1)")
        self._backend = _Backend(url)
        self.limits = dict(limits or parse_limits(None))
        self._margin = margin
        self._smooth = smooth
        self._now = now  # wall clock: entries are compared across processes and machines
        self._sleep = sleep
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()

    @property
    def display_url(self) -> str:
        return redact_url_safe(self._backend.url)

    def acquire(self, endpoint: str, scope: str = "default") -> float:
        """Wait until a request to `endpoint` may go; the seconds waited.

        Raises BudgetUnavailable when the store fails, BudgetConfigError when it is misconfigured.
        """
        slot = self._slot(endpoint, scope)
        started = self._now()
        with slot.lock:  # one thread per process per key waits on the store; the others queue
            while True:
                wait_s = self._try(slot, endpoint, scope)
                if wait_s is None:
                    return max(0.0, self._now() - started)
                self._sleep(max(wait_s, MIN_WAIT_S))

    def try_acquire(self, endpoint: str, scope: str = "default") -> bool:
        """Take one request from the budget if it has room now; never waits."""
        slot = self._slot(endpoint, scope)
        with slot.lock:
            return self._try(slot, endpoint, scope) is None

    def scoped(self, scope: str) -> ScopedBudget:
        return ScopedBudget(self, scope)

    def close(self) -> None:
        with self._slots_lock:
            for slot in self._slots.values():
                if self._backend.kind != "postgresql":  # the pool is closed once, below
                    slot.bucket.close()
            self._slots.clear()
            self._backend.close()

    def _try(self, slot: _Slot, endpoint: str, scope: str) -> float | None:
        """None when admitted, else the seconds until the budget may have room."""
        now = self._now()
        item = RateItem(f"{scope}.{endpoint}", int(now * 1000))
        with self._backend.lock, self._store_errors():
            if now - slot.last_leak >= LEAK_INTERVAL_S:
                slot.bucket.leak(item.timestamp)
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

    def _slot(self, endpoint: str, scope: str) -> _Slot:
        key = f"{scope}.{endpoint}"
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                limit = self.limits.get(endpoint, DEFAULT_LIMIT_PER_MINUTE)
                with self._backend.lock, self._store_errors():
                    bucket = self._backend.open(
                        key, budget_rates(limit, self._margin, self._smooth)
                    )
                slot = self._slots[key] = _Slot(bucket)
            return slot


@dataclass(frozen=True)
class ScopedBudget:
    """The `RateBudget` one client sees: its app's (or its connection's) share of the budget."""

    budget: RequestBudget
    scope: str

    def acquire(self, endpoint: str) -> float:
        return self.budget.acquire(endpoint, self.scope)

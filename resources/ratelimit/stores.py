"""Where the shared request budget lives: a SQLite file, Redis or PostgreSQL, one module per store.

Each store keeps two things per budget key (`<scope>.<endpoint>`), both visible to every process
and machine using it:

- the sliding-window log of admitted requests (a pyrate-limiter bucket), and
- the limit TikTok taught us (`LearnedLimit`): changed only by compare-and-set, so two processes
  that meet a 429 at the same moment cut the limit once, not twice.

Each store counts every entry from the window's start onward, later stamps included: a process
stamps its request before it waits for the store, so entries can arrive out of order, and an entry
stamped after ours still shares windows with it (pyrate-limiter's Redis script stopped at `now`).

Under contention every store queues: SQLite takes a file lock, Redis runs one Lua script at a
time, and PostgreSQL waits for a transaction-level advisory lock (pyrate-limiter's own PostgreSQL
bucket refuses with `LOCK TABLE ... NOWAIT` instead, which turned contention into refusals).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass

from pyrate_limiter import AbstractBucket, Rate

from resources.database import redact_url

LEARNED_TABLE = "tiktok_budget_limits"
_TABLE_SAFE = re.compile(r"[^a-z0-9_]")


class BudgetConfigError(ValueError):
    """The budget's URL or limits are malformed; the message says what to write instead."""


@dataclass(frozen=True)
class LearnedLimit:
    """What TikTok taught one key: the limit per minute set by the last cut, when (epoch s), and
    how many requests the window held when TikTok refused (None if unknown)."""

    limit: float
    cut_at: float
    seen: float | None = None

    def encode(self) -> str:
        seen = "" if self.seen is None else repr(self.seen)
        return f"{self.limit!r},{self.cut_at!r},{seen}"

    @classmethod
    def decode(cls, raw: str | bytes | None) -> LearnedLimit | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        limit, cut_at, seen, *_ = [*text.split(","), "", ""]
        return cls(float(limit), float(cut_at), float(seen) if seen else None)

    @classmethod
    def from_row(cls, row: tuple | None) -> LearnedLimit | None:
        if row is None:
            return None
        return cls(float(row[0]), float(row[1]), None if row[2] is None else float(row[2]))


def redact_url_safe(url: str) -> str:
    try:
        return redact_url(url)
    except Exception:  # an unparsable URL may hold a password anywhere: show its scheme only
        return url.split(":", 1)[0] + ":..."


def table_name(key: str) -> str:
    # Readable, and unique even when two keys differ only in characters SQL names cannot hold.
    digest = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    # Short enough that PostgreSQL's 63-character names keep the digest (with its prefix).
    return f"tiktok_budget_{_TABLE_SAFE.sub('_', key.lower())[:20]}_{digest}"


class BudgetStore:
    """One store; `lock` serializes this process's use of it (its connections are not shared)."""

    kind = "store"

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()

    def open(self, key: str, rates: list[Rate]) -> AbstractBucket:
        raise NotImplementedError

    def count(self, bucket: AbstractBucket, start_ms: int, end_ms: int) -> int:
        """Admitted requests with start_ms < timestamp <= end_ms."""
        raise NotImplementedError

    def read_learned(self, key: str) -> LearnedLimit | None:
        raise NotImplementedError

    def swap_learned(self, key: str, expected: LearnedLimit | None, new: LearnedLimit) -> bool:
        """Store `new` if the stored value is still `expected`; False if another process won."""
        raise NotImplementedError

    def close(self, buckets: list[AbstractBucket]) -> None:
        for bucket in buckets:
            bucket.close()

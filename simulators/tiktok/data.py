"""Deterministic synthetic creators and their video timelines.

Videos are never materialised: a video is (account, index), its create_time and id are computed
from the seed, and a page is found by binary search over the timeline. An account with 100,000
videos therefore costs no memory and a page costs O(page size + deleted videos).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Set
from dataclasses import dataclass

from simulators.tiktok.config import INDEX_BITS, SimulatorConfig
from simulators.tiktok.text import BIOS, CREATORS, pick, seeded_int

ANCHOR_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z: stats grow from here, videos predate it
DAY_SECONDS = 86_400
YEAR_SECONDS = 365 * DAY_SECONDS
MIN_VIDEO_GAP_SECONDS = 60
MAX_JITTER_SECONDS = 3 * 3_600
UNION_NAMESPACE = uuid.UUID("6f1c2a52-8d1e-4c55-9a0e-1d2b7c3e4f50")


@dataclass(frozen=True)
class SimAccount:
    """One simulated creator; counts are the values at the anchor, growth is per whole day."""

    index: int
    open_id: str
    union_id: str
    display_name: str
    username: str
    bio_description: str
    is_verified: bool
    video_count: int
    follower_base: int
    follower_daily_growth: int
    following_base: int
    likes_base: int
    likes_daily_growth: int


@dataclass(frozen=True)
class Timeline:
    """create_time(i) = newest - i * step - jitter(i); jitter < step / 2 keeps it falling."""

    newest: int
    step: int
    jitter_span: int
    count: int


def days_since_anchor(now: float) -> int:
    """Whole days since the anchor, never negative, so counts only ever grow."""
    return max(0, int(now - ANCHOR_EPOCH) // DAY_SECONDS)


def _open_id(seed: int, index: int) -> str:
    # Real open_ids are not UUIDs: "-000" plus 32 url-safe characters.
    digest = hashlib.blake2b(f"{seed}:open_id:{index}".encode(), digest_size=24).digest()
    return "-000" + base64.urlsafe_b64encode(digest).decode("ascii")


def _account(seed: int, index: int, video_count: int) -> SimAccount:
    display_name, stem = CREATORS[(index + seed) % len(CREATORS)]
    followers = 50 + seeded_int(seed, "followers", index) % 2_000_000
    likes_per_follower = 2 + seeded_int(seed, "likes", index) % 28
    return SimAccount(
        index=index,
        open_id=_open_id(seed, index),
        union_id=str(uuid.uuid5(UNION_NAMESPACE, f"{seed}:{index}")),
        display_name=display_name,
        username=f"{stem}_{index}",
        # Every third account has an empty bio: TikTok sends "" for it, never null.
        bio_description="" if index % 3 == 1 else pick(BIOS, seed, "bio", index),
        is_verified=seeded_int(seed, "verified", index) % 3 == 0,
        video_count=video_count,
        follower_base=followers,
        follower_daily_growth=followers // 300 + 3,
        following_base=seeded_int(seed, "following", index) % 1_500,
        likes_base=followers * likes_per_follower,
        likes_daily_growth=(followers // 300 + 3) * likes_per_follower,
    )


def _timeline(seed: int, index: int, count: int) -> Timeline:
    newest = ANCHOR_EPOCH - 3_600 - seeded_int(seed, "newest", index) % (3 * DAY_SECONDS)
    step = max(MIN_VIDEO_GAP_SECONDS, YEAR_SECONDS // max(count, 1))
    jitter_span = max(1, min(step // 2, MAX_JITTER_SECONDS))
    return Timeline(newest=newest, step=step, jitter_span=jitter_span, count=count)


class Catalog:
    """All creators of one seed plus O(1) access to any of their videos."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.seed = config.seed
        counts = [config.video_count_of(index) for index in range(config.accounts)]
        self.accounts = tuple(_account(self.seed, i, n) for i, n in enumerate(counts))
        self._timelines = tuple(_timeline(self.seed, i, n) for i, n in enumerate(counts))
        self._by_open_id = {account.open_id: account.index for account in self.accounts}

    def resolve(self, account: int | str) -> int:
        """Account index from an index or an open_id."""
        if isinstance(account, int) and not isinstance(account, bool):
            if 0 <= account < len(self.accounts):
                return account
        elif isinstance(account, str) and account in self._by_open_id:
            return self._by_open_id[account]
        raise ValueError(f"unknown simulated account: {account!r}")

    def total_videos(self, account: int) -> int:
        return self._timelines[account].count

    def create_time(self, account: int, index: int) -> int:
        line = self._timelines[account]
        jitter = seeded_int(self.seed, "jitter", account, index) % line.jitter_span
        return line.newest - index * line.step - jitter

    def video_id(self, account: int, index: int) -> str:
        # Time in the high 32 bits like TikTok's ids: 19 digits, far above 2**53.
        packed = (account << INDEX_BITS) | index
        return str((self.create_time(account, index) << 32) | packed)

    def decode_video_id(self, video_id: object) -> tuple[int, int] | None:
        """(account, index) of a well-formed id of this catalog, else None."""
        if not isinstance(video_id, str) or not video_id.isdigit() or len(video_id) != 19:
            return None
        number = int(video_id)
        low = number & 0xFFFF_FFFF
        account, index = low >> INDEX_BITS, low & ((1 << INDEX_BITS) - 1)
        if account >= len(self.accounts) or index >= self.total_videos(account):
            return None
        if number >> 32 != self.create_time(account, index):
            return None
        return account, index

    def start_index(self, account: int, cursor_ms: int | None) -> int:
        """First index with create_time * 1000 < cursor; 0 when no cursor was given."""
        count = self.total_videos(account)
        if not cursor_ms:
            return 0
        low, high = 0, count
        while low < high:
            middle = (low + high) // 2
            if self.create_time(account, middle) * 1000 < cursor_ms:
                high = middle
            else:
                low = middle + 1
        return low

    def collect(
        self, account: int, start: int, limit: int, deleted: Set[int]
    ) -> tuple[tuple[int, ...], bool]:
        """Up to `limit` visible indexes from `start`, and whether a visible one follows them."""
        count = self.total_videos(account)
        found: list[int] = []
        index = start
        while index < count and len(found) < limit:
            if index not in deleted:
                found.append(index)
            index += 1
        while index < count and index in deleted:
            index += 1
        return tuple(found), index < count

    def rewind(self, account: int, start: int, limit: int, deleted: Set[int]) -> int:
        """Index where the `limit` visible videos just newer than `start` begin."""
        index = start
        while index > 0 and limit > 0:
            index -= 1
            if index not in deleted:
                limit -= 1
        return index

    def visible_count(self, account: int, deleted: Set[int]) -> int:
        count = self.total_videos(account)
        return count - sum(1 for index in deleted if index < count)

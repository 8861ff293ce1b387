"""Hard stops for walking /v2/video/list/ pages (newest first).

A walk ends normally on `has_more` false or on reaching videos at or before a watermark
(incremental mode). It ends abnormally on a cursor that repeats or does not move back in time, a
run of empty pages that still claim `has_more`, or a page cap; the page that showed the anomaly is
asked for once more first, since one bad answer is often followed by a good one. An abnormal end
leaves the walk incomplete, and the caller must not treat unseen videos as deleted nor store a
watermark past the gap. Items already seen on an earlier page are dropped, so a duplicate never
reaches the warehouse twice. Short pages with `has_more` true are normal (tiktok-api.md 12.9).

The ids seen so far are kept as 8-byte numbers (`SeenIds`), not strings: a walk over 100,000
videos holds about 1 MB for them instead of about 13 MB of id strings and set slots (measured
with tracemalloc; bench.memory in docs/benchmarks.md).
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from resources.tiktok.models import TikTokVideo, VideoPage

MAX_PAGES = 10_000  # 200,000 videos at 20 a page: far beyond any real account
MAX_EMPTY_PAGES = 3
PAGE_REPEATS = 1  # times an anomalous page is asked for again before the walk gives up
NORMAL_STOPS = frozenset({"has_more_false", "reached_stored_videos"})
# New ids wait in a small set until they are 1/8 of the sorted ones, then are merged in: each id
# is copied about 9 times in all, and the set never holds more than an eighth of the walk.
MIN_PENDING = 1_024
MERGE_SHARE = 8
_UINT64_DIGITS = 20


def _as_number(video_id: str) -> int | None:
    """The id as an unsigned 64-bit number when its decimal text maps back to it exactly."""
    canonical = video_id.isascii() and video_id.isdigit() and not video_id.startswith("0")
    if canonical and len(video_id) <= _UINT64_DIGITS:
        number = int(video_id)
        if number < 1 << 64:
            return number
    return None


class SeenIds:
    """A set of video ids in about 8 bytes each (TikTok's ids are 19-digit decimal numbers).

    Ids that are not canonical decimal numbers below 2**64 are kept as strings, so membership is
    exact for any id; only the usual ones are packed.
    """

    def __init__(self) -> None:
        self._sorted = array("Q")
        self._pending: set[int] = set()
        self._other: set[str] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._pending) + len(self._other)

    def __contains__(self, video_id: object) -> bool:
        if not isinstance(video_id, str):
            return False
        number = _as_number(video_id)
        if number is None:
            return video_id in self._other
        return number in self._pending or self._in_sorted(number)

    def _in_sorted(self, number: int) -> bool:
        at = bisect_left(self._sorted, number)
        return at < len(self._sorted) and self._sorted[at] == number

    def add(self, video_id: str) -> None:
        number = _as_number(video_id)
        if number is None:
            self._other.add(video_id)
            return
        if number in self._pending or self._in_sorted(number):
            return
        self._pending.add(number)
        if len(self._pending) >= max(MIN_PENDING, len(self._sorted) // MERGE_SHARE):
            self._merge()

    def _merge(self) -> None:
        self._sorted = array("Q", heapq.merge(self._sorted, sorted(self._pending)))
        self._pending.clear()


@dataclass
class PageWalk:
    stop_at_or_before: int | None = None  # create_time watermark (seconds) for incremental syncs
    max_pages: int = MAX_PAGES
    pages: int = 0
    duplicates: int = 0
    repeated_pages: int = 0
    stop_reason: str | None = None
    next_cursor: int | None = None  # the cursor to send for the next page
    _seen: SeenIds = field(default_factory=SeenIds)
    _empty_run: int = 0
    _repeats_in_a_row: int = 0

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    @property
    def complete(self) -> bool:
        """True when the walk saw every video it was meant to see."""
        return self.stop_reason in NORMAL_STOPS

    def accept(self, page: VideoPage, requested: int | None = None) -> Iterator[TikTokVideo]:
        """Yield the page's new videos and decide on the next cursor, or a stop.

        `requested` is the cursor that was sent for this page (None for the first page).
        """
        self.pages += 1
        for video in page.videos:
            if video.id in self._seen:
                self.duplicates += 1
                continue
            if self.stop_at_or_before is not None and video.create_time <= self.stop_at_or_before:
                self.stop_reason = "reached_stored_videos"
                return
            self._seen.add(video.id)
            yield video
        self._empty_run = 0 if page.videos else self._empty_run + 1
        self._decide(page, requested)

    def _decide(self, page: VideoPage, requested: int | None) -> None:
        if not page.has_more:
            self.stop_reason = "has_more_false"
            return
        if self.pages >= self.max_pages:
            self.stop_reason = "max_pages"
            return
        anomaly = self._anomaly(page, requested)
        if anomaly is None:
            self._repeats_in_a_row = 0
            self.next_cursor = page.cursor
        elif self._repeats_in_a_row < PAGE_REPEATS:
            self._repeats_in_a_row += 1
            self.repeated_pages += 1
            self.next_cursor = requested  # ask for the same page again
        else:
            self.stop_reason = anomaly

    def _anomaly(self, page: VideoPage, requested: int | None) -> str | None:
        if page.cursor <= 0:
            return "cursor_exhausted"
        if requested is not None and page.cursor >= requested:
            return "cursor_not_advancing"
        if self._empty_run >= MAX_EMPTY_PAGES:
            return "empty_pages"
        return None

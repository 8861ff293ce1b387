"""Hard stops for walking /v2/video/list/ pages (newest first).

A walk ends normally on `has_more` false or on reaching videos at or before a watermark
(incremental mode). It ends abnormally on a cursor that repeats or does not move back in time, a
run of empty pages that still claim `has_more`, or a page cap; the page that showed the anomaly is
asked for once more first, since one bad answer is often followed by a good one. An abnormal end
leaves the walk incomplete, and the caller must not treat unseen videos as deleted nor store a
watermark past the gap. Items already seen on an earlier page are dropped, so a duplicate never
reaches the warehouse twice. Short pages with `has_more` true are normal (tiktok-api.md 12.9).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from resources.tiktok.models import TikTokVideo, VideoPage

MAX_PAGES = 10_000  # 200,000 videos at 20 a page: far beyond any real account
MAX_EMPTY_PAGES = 3
PAGE_REPEATS = 1  # times an anomalous page is asked for again before the walk gives up
NORMAL_STOPS = frozenset({"has_more_false", "reached_stored_videos"})


@dataclass
class PageWalk:
    stop_at_or_before: int | None = None  # create_time watermark (seconds) for incremental syncs
    max_pages: int = MAX_PAGES
    pages: int = 0
    duplicates: int = 0
    repeated_pages: int = 0
    stop_reason: str | None = None
    next_cursor: int | None = None  # the cursor to send for the next page
    _seen: set[str] = field(default_factory=set)
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

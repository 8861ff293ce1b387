"""Hard stops for walking /v2/video/list/ pages (newest first).

A page walk ends on: `has_more` false; a cursor that repeats or does not move back in time; a run
of empty pages that still claim `has_more`; reaching videos at or before a watermark (incremental
mode); or a page cap. Items already seen on an earlier page are dropped, so a duplicate never
reaches the warehouse twice. Short pages with `has_more` true are normal (tiktok-api.md section
12.9).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from resources.tiktok.models import TikTokVideo, VideoPage

MAX_PAGES = 10_000  # 200,000 videos at 20 a page: far beyond any real account
MAX_EMPTY_PAGES = 3


@dataclass
class PageWalk:
    stop_at_or_before: int | None = None  # create_time watermark (seconds) for incremental syncs
    max_pages: int = MAX_PAGES
    pages: int = 0
    duplicates: int = 0
    stop_reason: str | None = None
    _seen: set[str] = field(default_factory=set)
    _cursors: list[int] = field(default_factory=list)
    _empty_run: int = 0

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    def accept(self, page: VideoPage) -> Iterator[TikTokVideo]:
        """Yield the page's new videos and decide whether another page should be fetched."""
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
        self.stop_reason = self._next_stop(page)

    def _next_stop(self, page: VideoPage) -> str | None:
        if not page.has_more:
            return "has_more_false"
        if self._cursors and page.cursor >= self._cursors[-1]:
            return "cursor_not_advancing"
        if page.cursor <= 0:
            return "cursor_exhausted"
        if self._empty_run >= MAX_EMPTY_PAGES:
            return "empty_pages"
        if self.pages >= self.max_pages:
            return "max_pages"
        self._cursors.append(page.cursor)
        return None

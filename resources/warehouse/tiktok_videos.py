"""The statements of one video sync on `tiktok_videos` and `tiktok_video_metrics_daily`.

A `VideoTables` names the two tables, the run's load id and its time; `VideoTables.writing` opens
one warehouse transaction for a connection's whole sync (`services.videos` decides what goes in).
Every listed video is written with the run's load id, so "stored but not listed by this run" is a
query (`_load_id` is not this run's) rather than a set of ids held in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Table, and_, func, or_, select, update

from resources.tiktok.models import TikTokVideo
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.store import Warehouse

ID_CHUNK = 500  # ids per UPDATE ... WHERE id IN (...) and per page of ids read: far below limits


@dataclass(frozen=True)
class VideoTables:
    warehouse: Warehouse
    videos: Table
    daily: Table
    load_id: str
    now: datetime

    def newest_create_time(self, name: str) -> int | None:
        """The incremental sync's watermark: the newest `create_time` stored for the connection."""
        query = select(func.max(self.videos.c.create_time)).where(
            self.videos.c.connection_name == name
        )
        with self.warehouse.engine.connect() as db:
            newest = db.execute(query).scalar_one_or_none()
        return int(newest) if newest is not None else None

    @contextmanager
    def writing(self, name: str, open_id: str) -> Iterator[VideoWrite]:
        """One transaction for one connection's sync: everything in it or nothing."""
        with self.warehouse.transaction() as db:
            yield VideoWrite(self, db, name, open_id)


@dataclass(frozen=True)
class VideoWrite:
    """The open transaction of one connection's video sync."""

    tables: VideoTables
    db: Connection
    name: str
    open_id: str

    def write(self, videos: list[TikTokVideo], owned: tuple[str, ...] | None = None) -> None:
        """Upsert the videos and today's metrics row of each (`owned`: the columns to update)."""
        if not videos:
            return
        target, today = self.tables, self.tables.now.date()
        rows = [tables.video_row(self.name, self.open_id, video) for video in videos]
        wh = target.warehouse
        wh.upsert(self.db, target.videos, rows, tables.VIDEO_KEY, target.load_id, owned=owned)
        metrics = [tables.video_metrics_row(self.name, video, today) for video in videos]
        wh.upsert(self.db, target.daily, metrics, tables.VIDEO_METRICS_KEY, target.load_id)

    def _not_listed(self) -> list[ColumnElement[bool]]:
        """Live rows of the connection this run has not written (so not listed, not refreshed)."""
        videos = self.tables.videos
        return [
            videos.c.connection_name == self.name,
            videos.c.deleted_at.is_(None),
            videos.c._load_id.is_distinct_from(self.tables.load_id),
        ]

    def _stamp_deleted(self) -> dict[str, object]:
        now = self.tables.now
        return {"deleted_at": now, "_synced_at": now, "_load_id": self.tables.load_id}

    def mark_unlisted_deleted(self) -> int:
        """Full mode: mark deleted every live video the walk did not list, in one UPDATE."""
        statement = (
            update(self.tables.videos).where(*self._not_listed()).values(**self._stamp_deleted())
        )
        return self.db.execute(statement).rowcount

    def recent_unlisted_ids(self, since: int) -> Iterator[str]:
        """Ids posted since `since` and not listed by this run, newest first, ID_CHUNK per query.

        Keyset pages on (create_time, id), so rows refreshed or marked meanwhile shift nothing.
        """
        videos = self.tables.videos
        query = (
            select(videos.c.create_time, videos.c.id)
            .where(*self._not_listed(), videos.c.create_time >= since)
            .order_by(videos.c.create_time.desc(), videos.c.id.desc())
            .limit(ID_CHUNK)
        )
        after: tuple[int, str] | None = None
        while True:
            page = query
            if after is not None:
                older = videos.c.create_time < after[0]
                page = query.where(
                    or_(older, and_(videos.c.create_time == after[0], videos.c.id < after[1]))
                )
            rows = self.db.execute(page).all()
            yield from (row.id for row in rows)
            if len(rows) < ID_CHUNK:
                return
            after = (rows[-1].create_time, rows[-1].id)

    def mark_deleted(self, ids: set[str]) -> int:
        """Stamp `deleted_at` on videos TikTok no longer shows; their rows and history stay."""
        videos, ordered, marked = self.tables.videos, sorted(ids), 0
        for start in range(0, len(ordered), ID_CHUNK):
            statement = (
                update(videos)
                .where(
                    videos.c.connection_name == self.name,
                    videos.c.id.in_(ordered[start : start + ID_CHUNK]),
                    videos.c.deleted_at.is_(None),
                )
                .values(**self._stamp_deleted())
            )
            marked += self.db.execute(statement).rowcount
        return marked

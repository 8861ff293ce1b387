"""Read-only queries on the TikTok tables: the quality checks, the schedule's size estimate and
the top videos of a connection's preview."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from resources.warehouse import tiktok_tables as tables
from resources.warehouse.store import Warehouse

TOP_VIDEOS = 5


def _table(name: str, columns: list[tuple[str, str]]) -> sa.TableClause:
    # A lightweight clause: the checks only read, and must not reflect or create anything.
    return sa.table(name, *(sa.column(column) for column, _kind in columns))


VIDEOS = _table(tables.VIDEOS, tables.VIDEO_COLUMNS)
PROFILES = _table(tables.PROFILES, tables.PROFILE_COLUMNS)
VIDEO_METRICS = _table(tables.VIDEO_METRICS_DAILY, tables.VIDEO_METRICS_COLUMNS)


@dataclass(frozen=True)
class ConnectionSize:
    """What the warehouse knows of a connection: live videos, and those in the lookback."""

    videos: int
    recent_videos: int = 0


@dataclass(frozen=True)
class VideoIntegrity:
    """Counts of rows that break the key or miss a required field, for one connection."""

    duplicate_keys: int
    null_ids: int
    null_create_times: int

    @property
    def passed(self) -> bool:
        return not (self.duplicate_keys or self.null_ids or self.null_create_times)


def _scalar(wh: Warehouse, query: sa.Select) -> int:
    with wh.engine.connect() as db:
        return int(db.execute(query).scalar_one() or 0)


def video_integrity(wh: Warehouse, connection: str) -> VideoIntegrity:
    mine = VIDEOS.c.connection_name == connection
    duplicated = (
        sa.select(VIDEOS.c.id)
        .where(mine, VIDEOS.c.id.is_not(None))
        .group_by(VIDEOS.c.id)
        .having(sa.func.count() > 1)
        .subquery()
    )
    return VideoIntegrity(
        duplicate_keys=_scalar(wh, sa.select(sa.func.count()).select_from(duplicated)),
        null_ids=_scalar(wh, sa.select(sa.func.count()).where(mine, VIDEOS.c.id.is_(None))),
        null_create_times=_scalar(
            wh, sa.select(sa.func.count()).where(mine, VIDEOS.c.create_time.is_(None))
        ),
    )


def live_video_count(wh: Warehouse, connection: str) -> int:
    live = (VIDEOS.c.connection_name == connection, VIDEOS.c.deleted_at.is_(None))
    return _scalar(wh, sa.select(sa.func.count()).select_from(VIDEOS).where(*live))


def profile_video_counts(wh: Warehouse, connection: str) -> list[int | None]:
    """`video_count` of each stored profile row of the connection (None: stats not granted)."""
    query = sa.select(PROFILES.c.video_count).where(PROFILES.c.connection_name == connection)
    with wh.engine.connect() as db:
        return [row[0] for row in db.execute(query)]


def null_open_ids(wh: Warehouse, connection: str) -> int:
    mine = PROFILES.c.connection_name == connection
    return _scalar(wh, sa.select(sa.func.count()).where(mine, PROFILES.c.open_id.is_(None)))


def latest_snapshot_sizes(wh: Warehouse, connection: str) -> list[tuple[date, int]]:
    """(snapshot_date, rows) of the connection's two newest video metric snapshots, newest first."""
    day = VIDEO_METRICS.c.snapshot_date
    query = (
        sa.select(day, sa.func.count())
        .where(VIDEO_METRICS.c.connection_name == connection)
        .group_by(day)
        .order_by(day.desc())
        .limit(2)
    )
    with wh.engine.connect() as db:
        return [(row[0], int(row[1])) for row in db.execute(query)]


def connection_sizes(
    wh: Warehouse, connections: list[str], lookback_days: int, now: float | None = None
) -> list[ConnectionSize]:
    """Each connection's stored live videos and those posted within the lookback (0 if none)."""
    if not wh.has_table(tables.VIDEOS):
        return [ConnectionSize(0) for _ in connections]
    since = int((time.time() if now is None else now) - lookback_days * 86_400)
    recent = sa.func.sum(sa.case((VIDEOS.c.create_time >= since, 1), else_=0))
    query = (
        sa.select(VIDEOS.c.connection_name, sa.func.count(), recent)
        .where(VIDEOS.c.deleted_at.is_(None))
        .group_by(VIDEOS.c.connection_name)
    )
    with wh.engine.connect() as db:
        found = {row[0]: ConnectionSize(int(row[1]), int(row[2] or 0)) for row in db.execute(query)}
    return [found.get(name, ConnectionSize(0)) for name in connections]


def top_videos(wh: Warehouse, connection: str, limit: int = TOP_VIDEOS) -> list[dict[str, Any]]:
    """The connection's live videos with the most views, most viewed first."""
    query = (
        sa.select(VIDEOS.c.id, VIDEOS.c.title, VIDEOS.c.video_description, VIDEOS.c.view_count)
        .where(VIDEOS.c.connection_name == connection, VIDEOS.c.deleted_at.is_(None))
        .order_by(VIDEOS.c.view_count.desc().nulls_last(), VIDEOS.c.id)
        .limit(limit)
    )
    with wh.engine.connect() as db:
        return [dict(row._mapping) for row in db.execute(query)]

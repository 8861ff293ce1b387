"""Full and incremental video syncs of one connection, streamed into the warehouse in chunks.

- full (the default, `services.policy`): re-reads every video, so each live video's metrics and
  caption are current and one metrics snapshot row is written per live video; stored videos that
  were not listed get `deleted_at`.
- incremental: pages newest first and stops at the newest `create_time` already stored for the
  connection (the watermark, read from `tiktok_videos`: no other state). Then the stored videos
  posted within `lookback_days` are re-read through /v2/video/query/ (20 ids a request) for fresh
  metrics; an id TikTok no longer returns was deleted or made private.

Rows are never deleted: a video seen again gets `deleted_at = NULL` back. Everything of one sync is
one warehouse transaction, so a failed sync stores nothing and the watermark never skips a gap.
The first CHUNK_VIDEOS videos are read from TikTok before that transaction opens, so an account
of that size or less holds no write lock while it waits on TikTok (connections sync concurrently).

Memory stays flat whatever the account's size: videos flow through in chunks, and nothing per
video is held in Python. Every listed video is written with the run's load id (`_load_id`) in
this transaction, so "stored but not listed by this run" is a query (`_load_id` is not this run's)
rather than a set of ids; the page walk keeps its seen ids as 8-byte numbers (`SeenIds`). That
needs one sync per connection per load id, as a Dagster run does (and
`resources.connections.leases` ensures).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from typing import Literal

from sqlalchemy import ColumnElement, Connection, Table, and_, func, or_, select, update

from resources.connections.store import Connection as TikTokConnection
from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import ScopeMissing
from resources.tiktok.extract import extract_videos, refresh_metrics
from resources.tiktok.models import TikTokVideo
from resources.tiktok.pagination import PageWalk
from resources.tiktok.scopes import QUERY_FIELDS
from resources.warehouse.store import Warehouse
from services import tables
from services.outcome import ConnectionOutcome, Markdown, Metadata
from services.plan import SyncPlan, SyncTools
from services.preview import top_videos, top_videos_markdown

SyncMode = Literal["incremental", "full"]
CHUNK_VIDEOS = 1_000  # videos written per statement pair (rows + daily metrics)
ID_CHUNK = 500  # ids per UPDATE ... WHERE id IN (...) and per page of ids read: far below limits
DAY_S = 86_400
# Columns a /v2/video/query/ refresh owns: what it asked for, plus the deletion mark.
QUERY_OWNED = ("connection_name", "open_id", *QUERY_FIELDS, "deleted_at")


@dataclass
class VideoSyncResult:
    mode: SyncMode
    watermark: int | None = None
    listed: int = 0
    refreshed: int = 0
    marked_deleted: int = 0
    walk: PageWalk = field(default_factory=PageWalk)

    @property
    def rows_written(self) -> int:
        return self.listed + self.refreshed


@dataclass(frozen=True)
class VideoTables:
    warehouse: Warehouse
    videos: Table
    daily: Table
    load_id: str
    now: datetime


def sync_videos(
    client: TikTokClient,
    connection: TikTokConnection,
    target: VideoTables,
    mode: SyncMode,
    lookback_days: int,
) -> VideoSyncResult:
    """Sync one connection's videos in one transaction; raises the client's typed errors."""
    name = connection.name
    result = VideoSyncResult(mode=mode)
    if mode == "incremental":
        with target.warehouse.engine.connect() as db:
            result.watermark = _newest_create_time(db, target.videos, name)
    # One second early: a video posted in the same second as the newest stored one is kept.
    stop = None if result.watermark is None else result.watermark - 1
    result.walk = PageWalk(stop_at_or_before=stop)
    chunks = _chunks(extract_videos(client, connection.scopes, result.walk), CHUNK_VIDEOS)
    first = next(chunks, [])  # read before the transaction: see the module docstring
    with target.warehouse.transaction() as db:
        for chunk in chain([first], chunks):
            _write(db, target, connection, chunk)
            result.listed += len(chunk)
        # From here on, the connection's rows without this run's load id are the ones not listed.
        if mode == "full":
            result.marked_deleted = _mark_unlisted_deleted(db, target, name)
        else:
            since = int(target.now.timestamp()) - lookback_days * DAY_S
            recent = _recent_unlisted_ids(db, target, name, since)
            for asked, found in refresh_metrics(client, recent):
                _write(db, target, connection, found, owned=QUERY_OWNED)
                result.refreshed += len(found)
                missing = set(asked) - {video.id for video in found}
                result.marked_deleted += _mark_deleted(db, target, name, missing)
    return result


def _chunks(videos: Iterable[TikTokVideo], size: int) -> Iterator[list[TikTokVideo]]:
    iterator = iter(videos)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _write(
    db: Connection,
    target: VideoTables,
    connection: TikTokConnection,
    videos: list[TikTokVideo],
    owned: tuple[str, ...] | None = None,
) -> None:
    if not videos:
        return
    wh, name, today = target.warehouse, connection.name, target.now.date()
    rows = [tables.video_row(name, connection.open_id, video) for video in videos]
    wh.upsert(db, target.videos, rows, tables.VIDEO_KEY, target.load_id, owned=owned)
    metrics = [tables.video_metrics_row(name, video, today) for video in videos]
    wh.upsert(db, target.daily, metrics, tables.VIDEO_METRICS_KEY, target.load_id)


def _newest_create_time(db: Connection, videos: Table, name: str) -> int | None:
    query = select(func.max(videos.c.create_time)).where(videos.c.connection_name == name)
    newest = db.execute(query).scalar_one_or_none()
    return int(newest) if newest is not None else None


def _not_listed(videos: Table, name: str, load_id: str) -> list[ColumnElement[bool]]:
    """Live rows of the connection that this run has not written (so not listed, not refreshed)."""
    return [
        videos.c.connection_name == name,
        videos.c.deleted_at.is_(None),
        videos.c._load_id.is_distinct_from(load_id),
    ]


def _mark_unlisted_deleted(db: Connection, target: VideoTables, name: str) -> int:
    """Full mode: stamp `deleted_at` on every live video the walk did not list, in one UPDATE."""
    videos = target.videos
    statement = (
        update(videos)
        .where(*_not_listed(videos, name, target.load_id))
        .values(deleted_at=target.now, _synced_at=target.now, _load_id=target.load_id)
    )
    return db.execute(statement).rowcount


def _recent_unlisted_ids(
    db: Connection, target: VideoTables, name: str, since: int
) -> Iterator[str]:
    """Ids posted since `since` and not listed by this run, newest first, ID_CHUNK per query.

    Keyset pages on (create_time, id), so rows refreshed or marked meanwhile shift nothing.
    """
    videos = target.videos
    query = (
        select(videos.c.create_time, videos.c.id)
        .where(*_not_listed(videos, name, target.load_id), videos.c.create_time >= since)
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
        rows = db.execute(page).all()
        yield from (row.id for row in rows)
        if len(rows) < ID_CHUNK:
            return
        after = (rows[-1].create_time, rows[-1].id)


def _mark_deleted(db: Connection, target: VideoTables, name: str, ids: set[str]) -> int:
    """Stamp `deleted_at` on videos TikTok no longer shows; their rows and history stay."""
    videos, ordered, marked = target.videos, sorted(ids), 0
    for start in range(0, len(ordered), ID_CHUNK):
        statement = (
            update(videos)
            .where(
                videos.c.connection_name == name,
                videos.c.id.in_(ordered[start : start + ID_CHUNK]),
                videos.c.deleted_at.is_(None),
            )
            .values(deleted_at=target.now, _synced_at=target.now, _load_id=target.load_id)
        )
        marked += db.execute(statement).rowcount
    return marked


def sync_connection_videos(
    tools: SyncTools,
    plan: SyncPlan,
    connection: TikTokConnection,
    client: TikTokClient,
    outcome: ConnectionOutcome,
) -> Metadata:
    """The `tiktok_videos` step of one connection: its mode from the plan or the policy."""
    name = connection.name
    mode = plan.mode or plan.policy.mode_for(
        tools.sync_log.last_full(name) if tools.sync_log else None, plan.today
    )
    target = VideoTables(
        tools.warehouse,
        tools.tables.get(tables.VIDEOS, tables.VIDEO_COLUMNS, tables.VIDEO_KEY),
        tools.tables.get(
            tables.VIDEO_METRICS_DAILY, tables.VIDEO_METRICS_COLUMNS, tables.VIDEO_METRICS_KEY
        ),
        load_id=plan.load_id,
        now=plan.now,
    )
    meta: Metadata = {"dagster/row_count": 0, "connection": name, "sync_mode": mode}
    try:
        result = sync_videos(client, connection, target, mode, plan.policy.lookback_days)
    except ScopeMissing as err:
        outcome.warning(f"videos skipped for {name}: {err}")
        return (
            meta | _top_videos(tools, name) | {"skipped_reason": str(err), "table": tables.VIDEOS}
        )
    outcome.materialized[tables.VIDEO_METRICS_DAILY] = {
        "dagster/row_count": result.rows_written,  # one metrics row per video read today
        "connection": name,
        "snapshot_date": str(plan.today),
    }
    if mode == "full" and tools.sync_log is not None:
        tools.sync_log.record_full(name, plan.today)
    walk = result.walk
    outcome.info(
        f"{name}: {result.mode} sync: {result.listed} videos listed in {walk.pages} pages "
        f"({walk.stop_reason}), {result.refreshed} refreshed, "
        f"{result.marked_deleted} marked deleted"
    )
    return (
        meta
        | {
            "dagster/row_count": result.rows_written,
            "videos_listed": result.listed,
            "videos_refreshed": result.refreshed,
            "videos_marked_deleted": result.marked_deleted,
            "watermark_create_time": result.watermark if result.watermark is not None else "none",
            "lookback_days": plan.policy.lookback_days if mode == "incremental" else "n/a",
            "pages": walk.pages,
            "stop_reason": walk.stop_reason or "none",
            "duplicates_dropped": walk.duplicates,
            "pages_repeated": walk.repeated_pages,
        }
        # Read back after the load, so a video stored by an earlier run still ranks.
        | _top_videos(tools, name)
        | {"skipped_reason": "none", "table": tables.VIDEOS, "snapshot_date": str(plan.today)}
    )


def _top_videos(tools: SyncTools, name: str) -> Metadata:
    return {"top_videos": Markdown(top_videos_markdown(top_videos(tools.warehouse, name)))}

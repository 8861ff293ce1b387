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
from itertools import chain, islice
from typing import Literal

from resources.connections.store import Connection as TikTokConnection
from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import ScopeMissing
from resources.tiktok.extract import extract_videos, refresh_metrics
from resources.tiktok.models import TikTokVideo
from resources.tiktok.pagination import PageWalk
from resources.tiktok.scopes import QUERY_FIELDS
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.reads import top_videos
from resources.warehouse.tiktok_videos import VideoTables
from services.outcome import ConnectionOutcome, Markdown, Metadata
from services.plan import SyncPlan, SyncTools
from services.preview import top_videos_markdown

SyncMode = Literal["incremental", "full"]
CHUNK_VIDEOS = 1_000  # videos written per statement pair (rows + daily metrics)
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
        result.watermark = target.newest_create_time(name)
    # One second early: a video posted in the same second as the newest stored one is kept.
    stop = None if result.watermark is None else result.watermark - 1
    result.walk = PageWalk(stop_at_or_before=stop)
    chunks = _chunks(extract_videos(client, connection.scopes, result.walk), CHUNK_VIDEOS)
    first = next(chunks, [])  # read before the transaction: see the module docstring
    with target.writing(name, connection.open_id) as sync:
        for chunk in chain([first], chunks):
            sync.write(chunk)
            result.listed += len(chunk)
        # From here on, the connection's rows without this run's load id are the ones not listed.
        if mode == "full":
            result.marked_deleted = sync.mark_unlisted_deleted()
        else:
            since = int(target.now.timestamp()) - lookback_days * DAY_S
            for asked, found in refresh_metrics(client, sync.recent_unlisted_ids(since)):
                sync.write(found, owned=QUERY_OWNED)
                result.refreshed += len(found)
                missing = set(asked) - {video.id for video in found}
                result.marked_deleted += sync.mark_deleted(missing)
    return result


def _chunks(videos: Iterable[TikTokVideo], size: int) -> Iterator[list[TikTokVideo]]:
    iterator = iter(videos)
    while chunk := list(islice(iterator, size)):
        yield chunk


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

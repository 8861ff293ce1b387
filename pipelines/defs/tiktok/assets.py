"""TikTok extraction assets: one partition per connection, each a warehouse table."""

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import dagster as dg
from pydantic import Field
from sqlalchemy import Table

from pipelines.defs.batch import materialize_each
from pipelines.defs.quality.preview import column_schema, top_videos, top_videos_markdown
from pipelines.defs.tiktok import tables
from pipelines.defs.tiktok.failures import connection_failures
from pipelines.defs.tiktok.partitions import connection_backfill_policy, connection_partitions
from pipelines.defs.tiktok.video_sync import VideoTables, sync_videos
from resources.configurable import StateDatabaseResource, TikTokResource, WarehouseResource
from resources.connections import (
    ACTIVE,
    NEEDS_RECONNECT,
    Connection,
    ConnectionStore,
    connection_metadata,
)
from resources.settings import MODE_DEMO
from resources.tiktok.errors import NeedsReconnect, ScopeMissing
from resources.tiktok.extract import extract_profile
from resources.tokens import reconnect_hint
from resources.warehouse import Warehouse

TIKTOK_POOL = "tiktok_api"  # runs that call TikTok share one concurrency pool (dagster.yaml)


class VideoSyncConfig(dg.Config):
    """How `tiktok_videos` reads a connection's videos."""

    mode: Literal["incremental", "full"] = Field(
        default="incremental",
        description="incremental: new videos plus fresh metrics for the lookback window; "
        "full: every video again, marking the ones TikTok no longer shows as deleted",
    )
    lookback_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="incremental mode re-reads metrics of videos posted in this many last days",
    )


def _mode_metadata(tiktok: TikTokResource, context: dg.AssetExecutionContext) -> dict:
    """Once per step: a batched step would otherwise log the warning for every connection."""
    if tiktok.mode != MODE_DEMO:
        return {"mode": "live"}
    context.log.warning("DEMO MODE: simulated TikTok data from %s", tiktok.api_base_url)
    return {"mode": dg.MetadataValue.text("DEMO (simulated TikTok data, not real accounts)")}


def active_connection(store: ConnectionStore, name: str) -> Connection:
    """The connection, if it can sync; one that must be reconnected fails without calling TikTok."""
    connection = store.get(name)
    if connection.status == NEEDS_RECONNECT:
        reason = connection.status_reason or reconnect_hint(name)
        raise NeedsReconnect(f"connection {name!r} needs to be reconnected: {reason}")
    if connection.status != ACTIVE:
        raise ValueError(
            f"connection {name!r} is {connection.status}; {reconnect_hint(name)}, or remove it"
        )
    return connection


@dg.asset(
    partitions_def=connection_partitions,
    backfill_policy=connection_backfill_policy,
    group_name="tiktok",
    kinds={"python", "sql"},
    pool=TIKTOK_POOL,
    metadata={"dagster/column_schema": column_schema(tables.PROFILE_COLUMNS)},
)
def tiktok_profile(
    context: dg.AssetExecutionContext,
    tiktok: TikTokResource,
    state_db: StateDatabaseResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """A connection's TikTok profile with today's follower, like and video counts (and history)."""
    mode = _mode_metadata(tiktok, context)
    wh = warehouse.warehouse()

    @functools.cache  # once per step, after the first connection that extracted anything
    def profile_tables() -> tuple[Table, Table]:
        return (
            wh.ensure_table(tables.PROFILES, tables.PROFILE_COLUMNS, tables.PROFILE_KEY),
            wh.ensure_table(
                tables.PROFILE_STATS_DAILY, tables.PROFILE_STATS_COLUMNS, tables.PROFILE_STATS_KEY
            ),
        )

    return materialize_each(
        context,
        lambda name: _sync_profile(context, name, tiktok, state_db, wh, profile_tables) | mode,
    )


def _sync_profile(
    context: dg.AssetExecutionContext,
    name: str,
    tiktok: TikTokResource,
    state_db: StateDatabaseResource,
    wh: Warehouse,
    profile_tables: Callable[[], tuple[Table, Table]],
) -> dict:
    store = state_db.store()
    with connection_failures(name) as failure:
        connection = active_connection(store, name)
        with tiktok.client(connection, store) as client:
            failure.stats = client.stats
            extract = extract_profile(client, connection.scopes)
            stats = client.stats
    user, today = extract.user, datetime.now(UTC).date()
    profiles, daily = profile_tables()
    with wh.transaction() as db:
        row = tables.profile_row(name, user, extract.missing_scopes)
        wh.upsert(db, profiles, [row], tables.PROFILE_KEY, context.run.run_id)
        wh.upsert(
            db,
            daily,
            [tables.profile_stats_row(name, user, today)],
            tables.PROFILE_STATS_KEY,
            context.run.run_id,
        )
    store.mark_synced(name, display_name=user.display_name)
    for scope, fields in extract.missing_scopes.items():
        context.log.info("scope %s not granted: %s left empty", scope, ", ".join(fields))
    # Plain ints (not text) so the UI plots follower and like counts across materializations.
    counts = {
        field: dg.MetadataValue.int(value)
        for field in tables.STATS_FIELDS
        if isinstance(value := getattr(user, field), int)
    }
    return {
        **connection_metadata(connection),
        "dagster/row_count": 1,
        "connection": name,
        "granted_scopes": ", ".join(sorted(connection.scopes)),
        "missing_scopes": ", ".join(sorted(extract.missing_scopes)) or "none",
        "missing_scopes_reason": extract.reason
        or ("not granted by the user" if extract.missing_scopes else "none"),
        "table": tables.PROFILES,
        **counts,
        **stats.as_metadata(),
    }


@dg.asset(
    partitions_def=connection_partitions,
    backfill_policy=connection_backfill_policy,
    group_name="tiktok",
    kinds={"python", "sql"},
    pool=TIKTOK_POOL,
    metadata={"dagster/column_schema": column_schema(tables.VIDEO_COLUMNS)},
)
def tiktok_videos(
    context: dg.AssetExecutionContext,
    config: VideoSyncConfig,
    tiktok: TikTokResource,
    state_db: StateDatabaseResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Every published video of a connection with its current metrics (and daily history)."""
    mode = _mode_metadata(tiktok, context)
    wh = warehouse.warehouse()
    videos = wh.ensure_table(tables.VIDEOS, tables.VIDEO_COLUMNS, tables.VIDEO_KEY)
    daily = wh.ensure_table(
        tables.VIDEO_METRICS_DAILY, tables.VIDEO_METRICS_COLUMNS, tables.VIDEO_METRICS_KEY
    )

    def sync_one(name: str) -> dict:
        target = VideoTables(wh, videos, daily, load_id=context.run.run_id, now=datetime.now(UTC))
        return _sync_videos(context, name, config, tiktok, state_db, target) | mode

    return materialize_each(context, sync_one)


def _sync_videos(
    context: dg.AssetExecutionContext,
    name: str,
    config: VideoSyncConfig,
    tiktok: TikTokResource,
    state_db: StateDatabaseResource,
    target: VideoTables,
) -> dict:
    store = state_db.store()
    wh = target.warehouse
    skipped = None
    with connection_failures(name) as failure:
        connection = active_connection(store, name)
        with tiktok.client(connection, store) as client:
            failure.stats = client.stats
            try:
                result = sync_videos(client, connection, target, config.mode, config.lookback_days)
            except ScopeMissing as err:
                result, skipped = None, str(err)
                context.log.warning("videos skipped for %s: %s", name, err)
            stats = client.stats
    meta: dict = {"dagster/row_count": 0, "connection": name, "sync_mode": config.mode}
    if result is not None:
        walk = result.walk
        context.log.info(
            "%s sync: %d videos listed in %d pages (%s), %d refreshed, %d marked deleted",
            result.mode,
            result.listed,
            walk.pages,
            walk.stop_reason,
            result.refreshed,
            result.marked_deleted,
        )
        meta |= {
            "dagster/row_count": result.rows_written,
            "videos_listed": result.listed,
            "videos_refreshed": result.refreshed,
            "videos_marked_deleted": result.marked_deleted,
            "watermark_create_time": result.watermark if result.watermark is not None else "none",
            "lookback_days": config.lookback_days if config.mode == "incremental" else "n/a",
            "pages": walk.pages,
            "stop_reason": walk.stop_reason or "none",
            "duplicates_dropped": walk.duplicates,
            "pages_repeated": walk.repeated_pages,
        }
    # Read back after the load, so a video stored by an earlier run still ranks.
    meta["top_videos"] = top_videos_markdown(top_videos(wh, name))
    return meta | {
        "skipped_reason": skipped or "none",
        "table": tables.VIDEOS,
        **stats.as_metadata(),
    }

"""TikTok extraction assets: one partition per connection, each a warehouse table."""

from datetime import UTC, datetime

import dagster as dg

from pipelines.defs.tiktok import tables
from pipelines.defs.tiktok.failures import connection_failures
from pipelines.defs.tiktok.partitions import connection_partitions
from resources.configurable import StateDatabaseResource, TikTokResource, WarehouseResource
from resources.settings import MODE_DEMO
from resources.tiktok.errors import ScopeMissing
from resources.tiktok.extract import extract_profile, extract_videos
from resources.tiktok.pagination import PageWalk

TIKTOK_POOL = "tiktok_api"  # runs that call TikTok share one concurrency pool (dagster.yaml)


def _mode_metadata(tiktok: TikTokResource, context: dg.AssetExecutionContext) -> dict:
    if tiktok.mode != MODE_DEMO:
        return {"mode": "live"}
    context.log.warning("DEMO MODE: simulated TikTok data from %s", tiktok.api_base_url)
    return {"mode": dg.MetadataValue.text("DEMO (simulated TikTok data, not real accounts)")}


@dg.asset(
    partitions_def=connection_partitions,
    group_name="tiktok",
    kinds={"python", "sql"},
    pool=TIKTOK_POOL,
)
def tiktok_profile(
    context: dg.AssetExecutionContext,
    tiktok: TikTokResource,
    state_db: StateDatabaseResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """A connection's TikTok profile with today's follower, like and video counts (and history)."""
    name = context.partition_key
    store = state_db.store()
    with connection_failures(name):
        connection = store.get(name)
        with tiktok.client(connection, store) as client:
            extract = extract_profile(client, connection.scopes)
            stats = client.stats
    user, today = extract.user, datetime.now(UTC).date()
    wh = warehouse.warehouse()
    profiles = wh.ensure_table(tables.PROFILES, tables.PROFILE_COLUMNS, tables.PROFILE_KEY)
    daily = wh.ensure_table(
        tables.PROFILE_STATS_DAILY, tables.PROFILE_STATS_COLUMNS, tables.PROFILE_STATS_KEY
    )
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
    counts = {
        field: value
        for field in tables.STATS_FIELDS
        if isinstance(value := getattr(user, field), int)
    }
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 1,
            "connection": name,
            "granted_scopes": ", ".join(sorted(connection.scopes)),
            "missing_scopes": ", ".join(sorted(extract.missing_scopes)) or "none",
            "table": tables.PROFILES,
            **counts,
            **stats.as_metadata(),
            **_mode_metadata(tiktok, context),
        }
    )


@dg.asset(
    partitions_def=connection_partitions,
    group_name="tiktok",
    kinds={"python", "sql"},
    pool=TIKTOK_POOL,
)
def tiktok_videos(
    context: dg.AssetExecutionContext,
    tiktok: TikTokResource,
    state_db: StateDatabaseResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Every published video of a connection with its current metrics (and daily history)."""
    name = context.partition_key
    store = state_db.store()
    wh = warehouse.warehouse()
    videos = wh.ensure_table(tables.VIDEOS, tables.VIDEO_COLUMNS, tables.VIDEO_KEY)
    daily = wh.ensure_table(
        tables.VIDEO_METRICS_DAILY, tables.VIDEO_METRICS_COLUMNS, tables.VIDEO_METRICS_KEY
    )
    walk, today, skipped = PageWalk(), datetime.now(UTC).date(), None
    with connection_failures(name):
        connection = store.get(name)
        with tiktok.client(connection, store) as client, wh.transaction() as db:
            try:
                found = list(extract_videos(client, connection.scopes, walk))
            except ScopeMissing as err:
                found, skipped = [], str(err)
                context.log.warning("videos skipped for %s: %s", name, err)
            rows = [tables.video_row(name, connection.open_id, video) for video in found]
            metrics = [tables.video_metrics_row(name, video, today) for video in found]
            wh.upsert(db, videos, rows, tables.VIDEO_KEY, context.run.run_id)
            wh.upsert(db, daily, metrics, tables.VIDEO_METRICS_KEY, context.run.run_id)
            stats = client.stats
    context.log.info("fetched %d videos in %d pages (%s)", len(rows), walk.pages, walk.stop_reason)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "connection": name,
            "pages": walk.pages,
            "stop_reason": walk.stop_reason or "none",
            "duplicates_dropped": walk.duplicates,
            "skipped_reason": skipped or "none",
            "table": tables.VIDEOS,
            **stats.as_metadata(),
            **_mode_metadata(tiktok, context),
        }
    )

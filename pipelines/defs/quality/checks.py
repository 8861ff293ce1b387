"""Asset checks on the TikTok tables, evaluated per connection partition in the sync run.

The integrity checks are blocking: when one fails, the CRM mapping and push assets downstream of
that connection do not run, so bad rows never reach a CRM. The other checks warn: their failures
have innocent causes (TikTok counts only public videos; a connection can delete many videos).
"""

import time

import dagster as dg

from pipelines.defs.batch import check_each
from pipelines.defs.quality import queries
from pipelines.defs.quality.freshness import (
    FRESHNESS_HOURS,
    LIST_HINT,
    age_text,
    is_stale,
)
from pipelines.defs.tiktok import tables
from pipelines.defs.tiktok.assets import tiktok_profile, tiktok_videos
from pipelines.defs.tiktok.partitions import connection_partitions
from resources.configurable import StateDatabaseResource, WarehouseResource
from resources.connections import ConnectionStore
from resources.warehouse import Warehouse

WARN = dg.AssetCheckSeverity.WARN


@dg.asset_check(
    asset=tiktok_videos,
    partitions_def=connection_partitions,
    blocking=True,
    description="No duplicate (connection_name, id), no empty id or create_time.",
)
def videos_keys_unique_and_complete(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.warehouse()
    return check_each(context, lambda name: _videos_keys_unique_and_complete(wh, name))


def _videos_keys_unique_and_complete(wh: Warehouse, name: str) -> dg.AssetCheckResult:
    if not wh.has_table(tables.VIDEOS):
        return dg.AssetCheckResult(passed=True, description="no video table yet")
    found = queries.video_integrity(wh, name)
    return dg.AssetCheckResult(
        passed=found.passed,
        metadata={
            "duplicate_keys": found.duplicate_keys,
            "null_ids": found.null_ids,
            "null_create_times": found.null_create_times,
        },
        description=None
        if found.passed
        else f"{tables.VIDEOS} rows of {name!r} break the key or lack id/create_time; "
        "the CRM push was held back",
    )


@dg.asset_check(
    asset=tiktok_videos,
    partitions_def=connection_partitions,
    description="Stored live videos equal the profile's video_count (warns; TikTok counts only "
    "public videos). Skipped without the user.info.stats scope.",
)
def video_count_matches_profile(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.warehouse()
    return check_each(context, lambda name: _video_count_matches_profile(wh, name))


def _video_count_matches_profile(wh: Warehouse, name: str) -> dg.AssetCheckResult:
    counts = queries.profile_video_counts(wh, name) if wh.has_table(tables.PROFILES) else []
    expected = next((count for count in counts if count is not None), None)
    if expected is None:
        return dg.AssetCheckResult(
            passed=True, description="no profile video_count (stats scope not granted)"
        )
    stored = queries.live_video_count(wh, name) if wh.has_table(tables.VIDEOS) else 0
    return dg.AssetCheckResult(
        passed=stored == expected,
        severity=WARN,
        metadata={"live_videos_stored": stored, "profile_video_count": expected},
        description=None
        if stored == expected
        else f"{stored} live videos stored, the profile says {expected}",
    )


@dg.asset_check(
    asset=tiktok_videos,
    partitions_def=connection_partitions,
    description="Today's video metric snapshot has at least half the rows of the previous one.",
)
def video_rows_not_halved(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.warehouse()
    return check_each(context, lambda name: _video_rows_not_halved(wh, name))


def _video_rows_not_halved(wh: Warehouse, name: str) -> dg.AssetCheckResult:
    has_table = wh.has_table(tables.VIDEO_METRICS_DAILY)
    sizes = queries.latest_snapshot_sizes(wh, name) if has_table else []
    if len(sizes) < 2:
        return dg.AssetCheckResult(passed=True, description="no previous snapshot to compare")
    (latest_day, latest), (previous_day, previous) = sizes
    passed = latest * 2 >= previous
    return dg.AssetCheckResult(
        passed=passed,
        severity=WARN,
        metadata={
            "latest_snapshot_date": str(latest_day),
            "latest_rows": latest,
            "previous_snapshot_date": str(previous_day),
            "previous_rows": previous,
        },
        description=None
        if passed
        else f"{latest} metric rows on {latest_day}, {previous} on {previous_day}",
    )


@dg.asset_check(
    asset=tiktok_profile,
    partitions_def=connection_partitions,
    blocking=True,
    description="Every stored profile row of the connection has an open_id.",
)
def profile_open_id_present(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.warehouse()
    return check_each(context, lambda name: _profile_open_id_present(wh, name))


def _profile_open_id_present(wh: Warehouse, name: str) -> dg.AssetCheckResult:
    missing = queries.null_open_ids(wh, name) if wh.has_table(tables.PROFILES) else 0
    return dg.AssetCheckResult(
        passed=missing == 0,
        metadata={"null_open_ids": missing},
        description=f"{missing} profile rows of {name!r} without open_id" if missing else None,
    )


@dg.asset_check(
    asset=tiktok_profile,
    partitions_def=connection_partitions,
    description=f"The connection synced within {FRESHNESS_HOURS} hours (state database).",
)
def connection_synced_recently(
    context: dg.AssetCheckExecutionContext, state_db: StateDatabaseResource
) -> dg.AssetCheckResult:
    store = state_db.store()
    return check_each(context, lambda name: _connection_synced_recently(store, name))


def _connection_synced_recently(store: ConnectionStore, name: str) -> dg.AssetCheckResult:
    connection, now = store.get(name), time.time()
    stale = is_stale(connection, now)
    synced = connection.last_synced_at
    return dg.AssetCheckResult(
        passed=not stale,
        metadata={"last_synced_at": synced if synced is not None else "never"},
        description=f"{age_text(connection, now)}; {LIST_HINT}" if stale else None,
    )


CHECKS = [
    videos_keys_unique_and_complete,
    video_count_matches_profile,
    video_rows_not_halved,
    profile_open_id_present,
    connection_synced_recently,
]


@dg.definitions
def quality() -> dg.Definitions:
    # Only the checks: the freshness job and schedule are autoloaded from freshness.py.
    return dg.Definitions(asset_checks=CHECKS)

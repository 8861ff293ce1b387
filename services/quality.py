"""Quality checks of one connection's TikTok tables, evaluated right after its sync.

The integrity checks are blocking: when one fails, the connection's CRM records are not built or
pushed in that run, so bad rows never reach a CRM. The others warn, and only when something is
wrong or changed: a missing scope, or videos TikTok counts but does not list (private, filtered),
are explained in the metadata, not warned about every day.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from resources.connections.store import ConnectionStore
from resources.warehouse import reads as queries
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.store import Warehouse
from services.asset_names import PROFILE_ASSET, VIDEOS_ASSET
from services.freshness import FRESHNESS_HOURS, LIST_HINT, age_text, is_stale
from services.outcome import CheckOutcome, Timestamp

VIDEOS_KEYS = "videos_keys_unique_and_complete"
VIDEO_COUNT = "video_count_matches_profile"
ROWS_NOT_HALVED = "video_rows_not_halved"
OPEN_ID = "profile_open_id_present"
SYNCED_RECENTLY = "connection_synced_recently"

# name -> (asset, blocking, description): the Dagster layer declares the checks from this table.
CHECKS: dict[str, tuple[str, bool, str]] = {
    VIDEOS_KEYS: (
        VIDEOS_ASSET,
        True,
        "No duplicate (connection_name, id), no empty id or create_time. Blocking: the "
        "connection's CRM records wait until it passes.",
    ),
    VIDEO_COUNT: (
        VIDEOS_ASSET,
        False,
        "Stored live videos against the profile's video_count. TikTok also counts videos it does "
        "not list (private, filtered): fewer is explained in metadata; the check warns only when "
        "more live videos are stored than TikTok counts (missed deletions).",
    ),
    ROWS_NOT_HALVED: (
        VIDEOS_ASSET,
        False,
        "Today's video metric snapshot has at least half the rows of the previous one.",
    ),
    OPEN_ID: (PROFILE_ASSET, True, "Every stored profile row of the connection has an open_id."),
    SYNCED_RECENTLY: (
        PROFILE_ASSET,
        False,
        f"The connection synced within {FRESHNESS_HOURS} hours (state database).",
    ),
}


def _outcome(name: str, passed: bool, **fields: object) -> CheckOutcome:
    asset, blocking, _description = CHECKS[name]
    return CheckOutcome(asset=asset, name=name, passed=passed, blocking=blocking, **fields)  # type: ignore[arg-type]


def videos_keys_unique_and_complete(wh: Warehouse, connection: str) -> CheckOutcome:
    if not wh.has_table(tables.VIDEOS):
        return _outcome(VIDEOS_KEYS, True, description="no video table yet")
    found = queries.video_integrity(wh, connection)
    return _outcome(
        VIDEOS_KEYS,
        found.passed,
        metadata={
            "duplicate_keys": found.duplicate_keys,
            "null_ids": found.null_ids,
            "null_create_times": found.null_create_times,
        },
        description=None
        if found.passed
        else f"{tables.VIDEOS} rows of {connection!r} break the key or lack id/create_time; "
        "the CRM records were held back",
    )


def video_count_matches_profile(
    wh: Warehouse, connection: str, scopes: frozenset[str]
) -> CheckOutcome:
    missing = sorted({"user.info.stats", "video.list"} - scopes)
    if missing:
        return _outcome(
            VIDEO_COUNT,
            True,
            metadata={"not_compared_because": f"scope not granted: {', '.join(missing)}"},
            description=f"not compared: the connection did not grant {', '.join(missing)}",
        )
    counts = queries.profile_video_counts(wh, connection) if wh.has_table(tables.PROFILES) else []
    expected = next((count for count in counts if count is not None), None)
    if expected is None:
        return _outcome(VIDEO_COUNT, True, description="no profile video_count stored yet")
    stored = queries.live_video_count(wh, connection) if wh.has_table(tables.VIDEOS) else 0
    gap = expected - stored
    metadata: dict[str, object] = {
        "live_videos_stored": stored,
        "profile_video_count": expected,
        "videos_counted_not_listed": gap,
    }
    if gap >= 0:
        if gap:
            metadata["explanation"] = (
                "TikTok's video_count includes videos the Display API does not list (private, "
                "friends-only or filtered), so fewer stored videos are expected"
            )
        return _outcome(VIDEO_COUNT, True, metadata=metadata)
    return _outcome(
        VIDEO_COUNT,
        False,
        warn_only=True,
        metadata=metadata,
        description=f"{stored} live videos stored, TikTok counts {expected}: deletions were "
        "missed (the incremental policy re-reads only recent videos: run a full sync with "
        "`tiktok-crm-sync sync NAME --mode full`)",
    )


def video_rows_not_halved(wh: Warehouse, connection: str) -> CheckOutcome:
    has_table = wh.has_table(tables.VIDEO_METRICS_DAILY)
    sizes = queries.latest_snapshot_sizes(wh, connection) if has_table else []
    if len(sizes) < 2:
        return _outcome(ROWS_NOT_HALVED, True, description="no previous snapshot to compare")
    (latest_day, latest), (previous_day, previous) = sizes
    passed = latest * 2 >= previous
    return _outcome(
        ROWS_NOT_HALVED,
        passed,
        warn_only=True,
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


def profile_open_id_present(wh: Warehouse, connection: str) -> CheckOutcome:
    missing = queries.null_open_ids(wh, connection) if wh.has_table(tables.PROFILES) else 0
    return _outcome(
        OPEN_ID,
        missing == 0,
        metadata={"null_open_ids": missing},
        description=f"{missing} profile rows of {connection!r} without open_id"
        if missing
        else None,
    )


def connection_synced_recently(
    store: ConnectionStore, connection: str, now: Callable[[], float] = time.time
) -> CheckOutcome:
    found, at = store.get(connection), now()
    stale = is_stale(found, at)
    synced = found.last_synced_at
    return _outcome(
        SYNCED_RECENTLY,
        not stale,
        warn_only=True,
        metadata={"last_synced_at": Timestamp(synced) if synced is not None else "never"},
        description=f"{age_text(found, at)}; {LIST_HINT}" if stale else None,
    )


def evaluate(
    wh: Warehouse,
    store: ConnectionStore,
    connection: str,
    scopes: frozenset[str],
    assets: set[str],
    wanted: Callable[[str], bool],
) -> list[CheckOutcome]:
    """The checks of the assets synced for the connection in this run."""
    runners: dict[str, Callable[[], CheckOutcome]] = {
        VIDEOS_KEYS: lambda: videos_keys_unique_and_complete(wh, connection),
        VIDEO_COUNT: lambda: video_count_matches_profile(wh, connection, scopes),
        ROWS_NOT_HALVED: lambda: video_rows_not_halved(wh, connection),
        OPEN_ID: lambda: profile_open_id_present(wh, connection),
        SYNCED_RECENTLY: lambda: connection_synced_recently(store, connection),
    }
    return [run() for name, run in runners.items() if CHECKS[name][0] in assets and wanted(name)]

"""A connection's profile: today's row in `tiktok_profiles` and its daily stats snapshot.

Both tables come from one `/v2/user/info/` answer and are written in one transaction; each is its
own asset, so the snapshot (`tiktok_profile_stats_daily`) is reported as materialized beside the
profile, with the connection's trend over its last days.
"""

from __future__ import annotations

from resources.connections.store import Connection, connection_metadata
from resources.tiktok.client import TikTokClient
from resources.tiktok.extract import extract_profile
from resources.warehouse import tiktok_tables as tables
from services.outcome import ConnectionOutcome, Markdown, Metadata
from services.plan import SyncPlan, SyncTools
from services.trend import trend_markdown, trend_rows

# The counts plotted per snapshot (following_count is the creator's own choice, not audience).
TREND_COUNTS = ("follower_count", "likes_count", "video_count")


def sync_profile(
    tools: SyncTools,
    plan: SyncPlan,
    connection: Connection,
    client: TikTokClient,
    outcome: ConnectionOutcome,
) -> Metadata:
    name = connection.name
    extract = extract_profile(client, connection.scopes)
    user = extract.user
    profiles = tools.tables.get(tables.PROFILES, tables.PROFILE_COLUMNS, tables.PROFILE_KEY)
    daily = tools.tables.get(
        tables.PROFILE_STATS_DAILY, tables.PROFILE_STATS_COLUMNS, tables.PROFILE_STATS_KEY
    )
    wh = tools.warehouse
    with wh.transaction() as db:
        row = tables.profile_row(name, user, extract.missing_scopes)
        wh.upsert(db, profiles, [row], tables.PROFILE_KEY, plan.load_id)
        stats_row = tables.profile_stats_row(name, user, plan.today)
        wh.upsert(db, daily, [stats_row], tables.PROFILE_STATS_KEY, plan.load_id)
    outcome.materialized[tables.PROFILE_STATS_DAILY] = stats_metadata(
        name, stats_row, tools.warehouse.rows(tables.PROFILE_STATS_DAILY, connection_name=name)
    )
    tools.store.mark_synced(name, display_name=user.display_name)
    for scope, fields in extract.missing_scopes.items():
        outcome.info(f"{name}: scope {scope} not granted: {', '.join(fields)} left empty")
    # Today's counts as the profile holds them; the snapshot asset carries their trend.
    counts = {
        field: value
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
        "snapshot_date": str(plan.today),
        **counts,
    }


def stats_metadata(name: str, today: dict, history: list[dict]) -> Metadata:
    """The snapshot's metadata: today's counts as plain ints (what Dagster plots), and the
    connection's own trend over its last days (what Dagster cannot plot per partition)."""
    counts = {field: today[field] for field in TREND_COUNTS if isinstance(today[field], int)}
    return {
        "dagster/row_count": 1,  # rows this sync wrote, as every TikTok asset reports it
        "connection": name,
        "snapshot_date": str(today["snapshot_date"]),
        **counts,
        "trend": Markdown(trend_markdown(trend_rows(history))),
    }

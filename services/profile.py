"""A connection's profile: today's row in `tiktok_profiles` and its daily stats snapshot."""

from __future__ import annotations

from resources.connections import Connection, connection_metadata
from resources.tiktok.client import TikTokClient
from resources.tiktok.extract import extract_profile
from services import tables
from services.outcome import ConnectionOutcome, Metadata
from services.plan import SyncPlan, SyncTools

ASSET = "tiktok_profile"


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
    tools.store.mark_synced(name, display_name=user.display_name)
    for scope, fields in extract.missing_scopes.items():
        outcome.info(f"{name}: scope {scope} not granted: {', '.join(fields)} left empty")
    # Plain ints, so the UI plots follower and like counts across materializations.
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

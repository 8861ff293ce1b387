"""Connection freshness: every active connection synced within FRESHNESS_HOURS.

The same rule backs the `connection_synced_recently` check and the `connection_freshness` job,
which looks at every active connection at once, so a connection whose runs stopped being
launched at all is noticed too.
"""

from collections.abc import Iterable

from resources.connections.store import ACTIVE, Connection

FRESHNESS_HOURS = 26  # the daily sync plus two hours of slack for queueing and retries
FRESHNESS_JOB = "connection_freshness"
LIST_HINT = "`tiktok-crm-sync connections list` shows each connection's status and last sync"


def is_stale(connection: Connection, now: float, max_age_hours: float = FRESHNESS_HOURS) -> bool:
    """Never synced, or last synced longer ago than the limit."""
    synced = connection.last_synced_at
    return synced is None or now - synced > max_age_hours * 3600


def stale_connections(
    connections: Iterable[Connection], now: float, max_age_hours: float = FRESHNESS_HOURS
) -> list[Connection]:
    return [c for c in connections if c.status == ACTIVE and is_stale(c, now, max_age_hours)]


def age_text(connection: Connection, now: float) -> str:
    if connection.last_synced_at is None:
        return f"{connection.name} (never synced)"
    return f"{connection.name} (last synced {(now - connection.last_synced_at) / 3600:.1f} h ago)"

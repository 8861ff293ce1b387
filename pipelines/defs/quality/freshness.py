"""Connection freshness: every active connection synced within FRESHNESS_HOURS.

The same rule backs the `connection_synced_recently` check (one partition, in the sync run or on
its own) and the `connection_freshness` job, which looks at every active connection at once, so a
connection whose runs stopped being launched at all is noticed too.
"""

import time

import dagster as dg

from resources.configurable import StateDatabaseResource
from resources.connections.store import ACTIVE
from services.freshness import (
    FRESHNESS_HOURS,
    FRESHNESS_JOB,
    LIST_HINT,
    age_text,
    stale_connections,
)


@dg.op(description=f"Fails when an active connection has not synced within {FRESHNESS_HOURS} h.")
def check_connection_freshness(
    context: dg.OpExecutionContext, state_db: StateDatabaseResource
) -> None:
    now = time.time()
    active = state_db.store().list(ACTIVE)
    stale = stale_connections(active, now)
    if stale:
        raise dg.Failure(
            description=f"{len(stale)} of {len(active)} active connections not synced within "
            f"{FRESHNESS_HOURS} h: {', '.join(age_text(c, now) for c in stale)}. {LIST_HINT}.",
            metadata={"stale_connections": ", ".join(c.name for c in stale)},
        )
    context.log.info("all %d active connections synced within %d h", len(active), FRESHNESS_HOURS)


@dg.job(name=FRESHNESS_JOB, description="Check that every active connection synced recently.")
def connection_freshness() -> None:
    check_connection_freshness()


connection_freshness_schedule = dg.ScheduleDefinition(
    job=connection_freshness,
    cron_schedule="0 9 * * *",  # three hours after the default 06:00 daily sync
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

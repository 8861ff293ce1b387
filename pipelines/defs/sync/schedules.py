"""The daily schedule: one run per active connection, keyed by day so a tick never runs twice."""

import os

import dagster as dg

from pipelines.defs.sync.jobs import tiktok_daily_sync
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME
from resources.configurable import StateDatabaseResource

DEFAULT_CRON = "0 6 * * *"


@dg.schedule(
    job=tiktok_daily_sync,
    cron_schedule=os.environ.get("SYNC_CRON") or DEFAULT_CRON,
    execution_timezone=os.environ.get("SYNC_TIMEZONE") or "UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def tiktok_daily_sync_schedule(
    context: dg.ScheduleEvaluationContext, state_db: StateDatabaseResource
) -> list[dg.RunRequest]:
    active = state_db.store().names()
    # Schedules cannot emit partition requests; adding here (idempotent) means a connection
    # registered minutes ago is synced by this tick even before the partitions sensor runs.
    known = set(context.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME))
    new = [name for name in active if name not in known]
    if new:
        context.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, new)
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(run_key=f"{day}:{name}", partition_key=name, tags={"connection": name})
        for name in active
    ]

"""The daily schedule: every active connection once a day, in runs of up to SYNC_BATCH_SIZE.

A connection is synced at most once per scheduled day, however often the schedule ticks
(SYNC_CRON may tick hourly): each tick launches runs only for the active connections that no
run of this schedule covered yet that day, so a connection registered at noon is synced by the
next tick, and nothing else is synced twice. A connection that failed for a transient reason is
tried again later that day by the catch-up sensor (`catch_up.py`), which reads the same day tag.
Before launching, the tick estimates the TikTok requests the fleet needs (stored video counts,
the sync policy) and warns when a day's budget cannot cover them, saying what to change.
"""

import os
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from pipelines.children import run_size
from pipelines.defs.sync.jobs import tiktok_daily_sync
from pipelines.defs.tiktok.live import leave_out_demo, left_out_line
from pipelines.defs.tiktok.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    CONNECTION_PARTITIONS_NAME,
    partition_ranges,
)
from resources.configurable import StateDatabaseResource, WarehouseResource
from resources.connections.store import ACTIVE
from resources.ratelimit.budget import parse_limits
from resources.warehouse.reads import connection_sizes
from services.policy import estimate_requests, policy_from_env

DEFAULT_CRON = "0 6 * * *"
SYNC_DAY_TAG = "tiktok_crm_sync/sync_day"
SCHEDULE_NAME = "tiktok_daily_sync_schedule"
SYNC_TIMEZONE = os.environ.get("SYNC_TIMEZONE") or "UTC"


def run_range(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The first and last connection partition of a run (a single-partition run: that one)."""
    first = tags.get(ASSET_PARTITION_RANGE_START_TAG) or tags.get("dagster/partition")
    return first, tags.get(ASSET_PARTITION_RANGE_END_TAG) or first


def day_run_tags(first: str, last: str, day: str) -> dict[str, str]:
    """The tags of a run of the scheduled day `day` over partitions `first` to `last`."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first,
        ASSET_PARTITION_RANGE_END_TAG: last,
        SYNC_DAY_TAG: day,
    }


def covered_today(instance: dg.DagsterInstance, day: str, ordered: list[str]) -> set[str]:
    """Connections that a run of this schedule already covers on `day` (any status)."""
    records = instance.get_run_records(
        dg.RunsFilter(tags={SYNC_DAY_TAG: day, "dagster/schedule_name": SCHEDULE_NAME})
    )
    position = {name: index for index, name in enumerate(ordered)}
    covered: set[str] = set()
    for record in records:
        first, last = run_range(record.dagster_run.tags)
        if first in position and last in position:
            covered.update(ordered[position[first] : position[last] + 1])
    return covered


@dg.schedule(
    name=SCHEDULE_NAME,
    job=tiktok_daily_sync,
    cron_schedule=os.environ.get("SYNC_CRON") or DEFAULT_CRON,
    execution_timezone=SYNC_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def tiktok_daily_sync_schedule(
    context: dg.ScheduleEvaluationContext,
    state_db: StateDatabaseResource,
    warehouse: WarehouseResource,
) -> list[dg.RunRequest] | dg.SkipReason:
    active, left_out = leave_out_demo(state_db.store().list(ACTIVE))
    if left_out:
        context.log.info(left_out_line(left_out))
    # Schedules cannot emit partition requests; adding here (idempotent) means a connection
    # registered minutes ago is synced by this tick even before the partitions sensor runs.
    known = set(context.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME))
    new = [name for name in active if name not in known]
    if new:
        context.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, new)
    ordered = context.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME)
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    day = scheduled.strftime("%Y-%m-%d")
    covered = covered_today(context.instance, day, ordered)  # once: it reads the day's runs
    todo = [name for name in active if name not in covered]
    if not todo:
        return dg.SkipReason(f"every active connection ({len(active)}) is already synced on {day}")
    _warn_if_over_budget(context, warehouse, todo)
    return [
        dg.RunRequest(run_key=f"{day}:{first}:{last}", tags=day_run_tags(first, last, day))
        for first, last in partition_ranges(ordered, todo, run_size(len(todo)))
    ]


def _warn_if_over_budget(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource, names: list[str]
) -> None:
    policy = policy_from_env()
    limits = parse_limits(os.environ.get("TIKTOK_RATE_LIMITS"))
    sizes = connection_sizes(warehouse.warehouse(), names, policy.lookback_days)
    estimate = estimate_requests(sizes, policy.mode, limits)
    context.log.info(
        "%d connections to sync: about %d TikTok requests, %.1f minutes at the rate limit",
        len(names),
        sum(estimate.requests.values()),
        estimate.minutes,
    )
    if not estimate.fits_a_day:
        context.log.warning(estimate.advice())

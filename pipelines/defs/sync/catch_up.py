"""The catch-up pass: a connection that failed for a transient reason is synced again that day.

The daily schedule syncs each connection once per scheduled day, so a blip (TikTok's 5xx storm,
a circuit that opened, refusals past the rate-limit patience) used to lose that day's snapshot.
This sensor looks at the day's runs (tagged with the day by the schedule) and requests a new
run for exactly the connections whose latest run failed for a transient reason: the step's
failure metadata says which (`retryable_connections` of a batch, `error_kind` of a single one).

Never synced twice when it succeeded: a connection that any run of the day synced, or that a run
is still working on, is left alone; so is one that failed for a reason a retry cannot fix
(needs reconnect, missing scope, contract, configuration). At most `MAX_CATCH_UP_RUNS` extra
runs per connection and day, each at least `CATCH_UP_AFTER_S` after the failure.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.defs.sync.jobs import tiktok_daily_sync
from pipelines.defs.sync.schedules import SYNC_DAY_TAG, SYNC_TIMEZONE, day_run_tags, run_range
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME, partition_ranges
from resources.configurable import StateDatabaseResource
from resources.settings import sync_batch_size

# Two more tries a day after the scheduled one: enough to outlast an outage of an hour or two,
# few enough that a connection failing all day costs three of its runs, not twenty.
MAX_CATCH_UP_RUNS = 2
# Half an hour between a failure and its retry: a blip at TikTok is usually over by then, and
# the retry does not land inside the same incident.
CATCH_UP_AFTER_S = 30 * 60
CATCH_UP_EVERY_S = 15 * 60
CATCH_UP_TAG = "tiktok_crm_sync/catch_up"
# Error kinds (`resources.tiktok.errors`) a later try may not meet; a circuit carries the kind
# that opened it.
TRANSIENT_KINDS = frozenset({"transient", "rate_limited"})
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class DayOfRuns:
    """What the day's runs did, per connection."""

    runs: Counter[str] = field(default_factory=Counter)  # runs that covered it
    synced: set[str] = field(default_factory=set)  # a run succeeded for it
    busy: set[str] = field(default_factory=set)  # a run is still on it
    lost_to_blip: dict[str, float] = field(default_factory=dict)  # -> when that run ended
    given_up: set[str] = field(default_factory=set)  # failed for a reason a retry cannot fix

    def due(self, now: float) -> dict[str, int]:
        """Connections to try again now -> which catch-up this is (1, 2, ...)."""
        blocked = self.synced | self.busy | self.given_up
        return {
            name: self.runs[name]
            for name, ended in self.lost_to_blip.items()
            if name not in blocked
            and self.runs[name] <= MAX_CATCH_UP_RUNS
            and now - ended >= CATCH_UP_AFTER_S
        }


def _names(text: object) -> set[str]:
    return {name.strip() for name in str(text or "").split(",") if name.strip()}


def _failures(instance: dg.DagsterInstance, run_id: str) -> tuple[set[str], set[str]] | None:
    """(failed for a blip, failed otherwise) from the step's failure metadata; None: unknown."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        failure = event.event_specific_data.user_failure_data if event else None
        if failure is None:
            continue
        meta = {key: getattr(value, "value", value) for key, value in failure.metadata.items()}
        if "failed_connections" in meta:  # a batch: one step, many connections
            retryable = _names(meta.get("retryable_connections"))
            return retryable, _names(meta["failed_connections"]) - retryable
        if "connection" in meta:  # a run of one connection fails with that connection's failure
            name = str(meta["connection"])
            kind = meta.get("error_kind")
            return ({name}, set()) if kind in TRANSIENT_KINDS else (set(), {name})
    return None


def day_of_runs(instance: dg.DagsterInstance, day: str, ordered: list[str]) -> DayOfRuns:
    position = {name: index for index, name in enumerate(ordered)}
    seen = DayOfRuns()
    # Oldest first, so a later run's outcome replaces an earlier one's.
    records = instance.get_run_records(dg.RunsFilter(tags={SYNC_DAY_TAG: day}), ascending=True)
    for record in records:
        first, last = run_range(record.dagster_run.tags)
        if first not in position or last not in position:
            continue
        covered = set(ordered[position[first] : position[last] + 1])
        seen.runs.update(covered)
        status = record.dagster_run.status
        if status not in FINISHED:
            seen.busy |= covered
            continue
        failures = _failures(instance, record.dagster_run.run_id)
        if status == dg.DagsterRunStatus.SUCCESS:
            seen.synced |= covered
        elif failures is None:  # crashed or cancelled: the run's own retry policy decides
            seen.given_up |= covered
        else:
            blip, other = failures
            seen.synced |= covered - blip - other
            seen.given_up |= other
            seen.given_up -= blip  # failed for a blip this time: eligible again
            ended = record.end_time or time.time()
            seen.lost_to_blip.update(dict.fromkeys(blip & covered, ended))
    for name in seen.synced:
        seen.lost_to_blip.pop(name, None)
    return seen


def catch_up_requests(
    instance: dg.DagsterInstance, day: str, active: Iterable[str], now: float
) -> list[dg.RunRequest]:
    ordered = instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME)
    due = day_of_runs(instance, day, ordered).due(now)
    wanted = set(active)
    due = {name: attempt for name, attempt in due.items() if name in wanted}
    requests = []
    for attempt in sorted(set(due.values())):
        names = [name for name, n in due.items() if n == attempt]
        for first, last in partition_ranges(ordered, names, sync_batch_size()):
            requests.append(
                dg.RunRequest(
                    # Unique per day, range and attempt: the same catch-up is never launched twice.
                    run_key=f"{day}:{first}:{last}:catch-up-{attempt}",
                    tags=day_run_tags(first, last, day) | {CATCH_UP_TAG: str(attempt)},
                )
            )
    return requests


@dg.sensor(
    job=tiktok_daily_sync,
    minimum_interval_seconds=CATCH_UP_EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def tiktok_daily_sync_catch_up(
    context: dg.SensorEvaluationContext, state_db: StateDatabaseResource
) -> dg.SensorResult:
    """Re-run today the connections whose daily sync failed for a transient reason."""
    day = datetime.now(ZoneInfo(SYNC_TIMEZONE)).strftime("%Y-%m-%d")
    requests = catch_up_requests(context.instance, day, state_db.store().names(), time.time())
    if not requests:
        return dg.SensorResult(skip_reason=f"no connection to catch up on {day}")
    return dg.SensorResult(run_requests=requests)

"""Run the daily sync for given connections now, as real runs in the persistent Dagster instance.

Used by `tiktok-crm-sync sync` and `demo`: the connections are split into the same runs the
schedule would launch (ranges of up to SYNC_BATCH_SIZE partitions). One run executes in this
process; several execute at once in child processes. Either way progress is reported connection
by connection as they finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from pipelines import run_owner
from pipelines.children import ChildFailed, Children, run_size
from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.defs.tiktok.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    CONNECTION_PARTITIONS_NAME,
    partition_ranges,
)
from resources.settings import state_database_url
from services import progress
from services.asset_names import SYNC_ASSET
from services.outcome import ConnectionOutcome

# Every event stays in the run's event log (the UI shows them, failures with their traces); the
# terminal gets only the command's own summary, one sentence per failed connection.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class SyncOutcome:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # connection -> failure description
    run_ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # asset -> rows written
    api_requests: int = 0
    api_retries: int = 0
    api_rate_limited: int = 0

    def merge(self, other: SyncOutcome) -> None:
        self.succeeded += other.succeeded
        self.failed.update(other.failed)
        self.run_ids += other.run_ids
        for asset, rows in other.rows.items():
            self.rows[asset] = self.rows.get(asset, 0) + rows
        self.api_requests += other.api_requests
        self.api_retries += other.api_retries
        self.api_rate_limited += other.api_rate_limited

    def record(self, outcome: ConnectionOutcome) -> None:
        from pipelines.defs.batch import connection_failure

        self.api_requests += outcome.api_total("api_requests")
        self.api_retries += outcome.api_total("api_retries")
        self.api_rate_limited += outcome.api_total("api_rate_limited")
        for asset, metadata in outcome.materialized.items():
            rows = metadata.get("dagster/row_count")
            if isinstance(rows, int):
                self.rows[asset] = self.rows.get(asset, 0) + rows
        if outcome.ok:
            self.succeeded.append(outcome.name)
        else:
            self.failed[outcome.name] = connection_failure(outcome).description or "failed"

    def connections(self) -> list[tuple[str, bool]]:
        """(connection, succeeded) for each connection this outcome holds."""
        return [(name, True) for name in self.succeeded] + [(name, False) for name in self.failed]


def range_tags(first: str, last: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def sync_run_config(mode: str | None = None, sync_date: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if mode:
        config["mode"] = mode
    if sync_date:
        config["sync_date"] = sync_date
    return {"ops": {SYNC_ASSET: {"config": config}}} if config else {}


def add_partitions(instance: dg.DagsterInstance, names: Iterable[str]) -> None:
    known = set(instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME))
    instance.add_dynamic_partitions(
        CONNECTION_PARTITIONS_NAME, [n for n in names if n not in known]
    )


def run_daily_sync(
    instance: dg.DagsterInstance,
    names: Iterable[str],
    on_done: Callable[[str, bool], None] = lambda _name, _ok: None,
    *,
    mode: str | None = None,
    sync_date: str | None = None,
    tags: dict[str, str] | None = None,
    say: Callable[[str], None] = lambda _line: None,
    children: Children | None = None,
) -> SyncOutcome:
    """The connections in as few runs as the batch size allows; each fails or succeeds alone.

    One run executes in this process. Several execute at once, the first here and the others in
    a child process (Dagster executes one run at a time per process, and one process keeps one
    core busy at most): they share TikTok's budget through its store, so the second run's
    requests fill the window the first one leaves, and neither waits for the other's run
    creation or event writes.

    `say` hears one line when a run must wait for a `tiktok_api` pool slot, and one per dead
    run reaped meanwhile. `children` started earlier (`sync` starts them before it imports
    Dagster) execute the other runs; without them, they are started here.
    """
    names = list(dict.fromkeys(names))
    add_partitions(instance, names)
    ordered = instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME)
    runs = [
        RangeRun(first, last, mode, sync_date, tags or {}, _covered(ordered, first, last, names))
        for first, last in partition_ranges(ordered, names, run_size(len(names)))
    ]

    def on_heard(part: SyncOutcome) -> None:
        for name, ok in part.connections():
            on_done(name, ok)

    if len(runs) == 1:
        if children is not None:
            children.close()  # not needed: they exit
        return execute_range(instance, runs[0], on_heard, say)
    if children is not None:
        return _execute_concurrently(instance, runs, on_heard, say, children)
    with Children() as started:
        return _execute_concurrently(instance, runs, on_heard, say, started)


@dataclass(frozen=True)
class RangeRun:
    """One run of the daily job over a range of connection partitions, and whom it reports."""

    first: str
    last: str
    mode: str | None
    sync_date: str | None
    tags: dict[str, str]
    wanted: tuple[str, ...]  # the connections of the range this sync was asked for


def execute_range(
    instance: dg.DagsterInstance,
    run: RangeRun,
    on_heard: Callable[[SyncOutcome], None],
    say: Callable[[str], None],
    job: dg.JobDefinition | None = None,
) -> SyncOutcome:
    """Execute the run; `on_heard` gets each wanted connection's outcome as it finishes."""
    from pipelines.defs.sync.assets import TIKTOK_POOL

    job = job or daily_sync_job()
    outcome = SyncOutcome()
    wanted = set(run.wanted)
    release_leases = run_owner.lease_releaser(state_database_url())

    def heard(connection: ConnectionOutcome) -> None:
        if connection.name in wanted:
            part = SyncOutcome()
            part.record(connection)
            outcome.merge(part)
            on_heard(part)

    with progress.listening(heard):
        run_owner.wait_for_pool_slot(instance, TIKTOK_POOL, release_leases, say)
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={**QUIET_CONSOLE, **sync_run_config(run.mode, run.sync_date)},
            # The owner tags (this process: a child's own) let the next command or the daemon
            # fail this run if its process dies.
            tags={
                **range_tags(run.first, run.last),
                **run_owner.current_owner().tags(),
                **run.tags,
            },
        )
    outcome.run_ids.append(result.run_id)
    if not result.success:
        # A run that failed before its connections were heard of (bad config, a crash).
        unheard = SyncOutcome()
        for name in run.wanted:
            if name not in outcome.failed and name not in outcome.succeeded:
                unheard.failed[name] = _failure_text(result)
        outcome.merge(unheard)
        on_heard(unheard)
    return outcome


def _covered(ordered: list[str], first: str, last: str, names: list[str]) -> tuple[str, ...]:
    covered = set(ordered[ordered.index(first) : ordered.index(last) + 1])
    return tuple(name for name in names if name in covered)


def daily_sync_job() -> dg.JobDefinition:
    """The daily sync job, from the definitions as the environment now sets them (a second)."""
    from pipelines.definitions import defs  # after the environment is prepared

    return defs().resolve_job_def(DAILY_SYNC_JOB)


def _execute_concurrently(
    instance: dg.DagsterInstance,
    runs: list[RangeRun],
    on_heard: Callable[[SyncOutcome], None],
    say: Callable[[str], None],
    children: Children,
) -> SyncOutcome:
    """The first run here, the others in the children at the same time."""
    outcome = SyncOutcome()
    heard: dict[str, SyncOutcome] = {}  # what the children reported, connection by connection

    def relay() -> None:  # the children's progress and lines, in this process, as they happen
        while (item := children.progress.get()) is not None:
            if isinstance(item, str):
                say(item)
            else:
                heard.update((name, item) for name, _ok in item.connections())
                on_heard(item)

    relaying = threading.Thread(target=relay, name="sync-progress", daemon=True)
    relaying.start()
    try:
        pending = children.execute(runs[1:])
        outcome.merge(execute_range(instance, runs[0], on_heard, say))
        others = list(pending)
    finally:
        children.progress.put(None)
        relaying.join()  # after it, everything a dead child sent is in `heard`
    for run, part in zip(runs[1:], others, strict=True):
        if isinstance(part, ChildFailed):
            part = _failed_run(run, str(part), heard, on_heard)
        outcome.merge(part)
    return outcome


def _failed_run(
    run: RangeRun,
    reason: str,
    heard: dict[str, SyncOutcome],
    on_heard: Callable[[SyncOutcome], None],
) -> SyncOutcome:
    """A run whose process died: what it reported before it died, and the rest failed with why
    (only the rest is new to the progress)."""
    unheard = SyncOutcome(failed={name: reason for name in run.wanted if name not in heard})
    on_heard(unheard)
    failed = SyncOutcome()
    for name in run.wanted:
        failed.merge(heard.get(name, SyncOutcome()))
    failed.merge(unheard)
    return failed


@contextmanager
def child_runs(progress: Any) -> Iterator[Callable[[RangeRun], SyncOutcome]]:
    """In a child process (`pipelines.children`): the job and the instance, loaded before any
    run is handed over; what executes a run there, reporting on `progress`."""
    job = daily_sync_job()  # the environment is the parent's, as it was when the child started
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME is inherited from the parent

        def execute(run: RangeRun) -> SyncOutcome:
            return execute_range(instance, run, progress.put, progress.put, job)

        yield execute


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.user_failure_data
            if error and error.description:
                return error.description
            if event.step_failure_data.error:
                return event.step_failure_data.error.message.strip().splitlines()[-1]
    return "run failed (see the Dagster UI)"

"""Run the daily sync for given connections now, as real runs in the persistent Dagster instance.

Used by `tiktok-crm-sync sync` and `demo`: the connections are split into the same runs the
schedule would launch (ranges of up to SYNC_BATCH_SIZE partitions), each executed in this
process, so progress is reported connection by connection as they finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME, partition_ranges
from resources.settings import sync_batch_size
from services import progress
from services.outcome import ConnectionOutcome

# Every event stays in the run's event log (the UI shows them, failures with their traces); the
# terminal gets only the command's own summary, one sentence per failed connection.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
SYNC_ASSET = "connection_sync"


@dataclass
class SyncOutcome:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # connection -> failure description
    run_ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # asset -> rows written
    api_requests: int = 0
    api_retries: int = 0
    api_rate_limited: int = 0

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
) -> SyncOutcome:
    """The connections in as few runs as the batch size allows; each fails or succeeds alone."""
    from pipelines.definitions import defs  # after the environment is prepared

    names = list(dict.fromkeys(names))
    add_partitions(instance, names)
    ordered = instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME)
    job = defs().resolve_job_def(DAILY_SYNC_JOB)
    outcome = SyncOutcome()
    wanted = set(names)

    def heard(connection: ConnectionOutcome) -> None:
        if connection.name in wanted:
            outcome.record(connection)
            on_done(connection.name, connection.ok)

    with progress.listening(heard):
        for first, last in partition_ranges(ordered, names, sync_batch_size()):
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config={**QUIET_CONSOLE, **sync_run_config(mode, sync_date)},
                tags={**range_tags(first, last), "launched_by": "tiktok-crm-sync", **(tags or {})},
            )
            outcome.run_ids.append(result.run_id)
            if not result.success:
                # A run that failed before its connections were heard of (bad config, a crash).
                covered = ordered[ordered.index(first) : ordered.index(last) + 1]
                for name in covered:
                    if name not in outcome.failed and name not in outcome.succeeded:
                        outcome.failed[name] = _failure_text(result)
                        on_done(name, False)
    return outcome


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.user_failure_data
            if error and error.description:
                return error.description
            if event.step_failure_data.error:
                return event.step_failure_data.error.message.strip().splitlines()[-1]
    return "run failed (see the Dagster UI)"

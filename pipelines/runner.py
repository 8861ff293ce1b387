"""Run the daily sync job for given connections as real runs in the persistent Dagster instance."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dagster as dg

from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME

# Step-by-step events stay in the run's event log (the UI shows them); the terminal gets warnings.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class SyncOutcome:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # connection -> failure description
    run_ids: list[str] = field(default_factory=list)
    api_requests: int = 0
    api_retries: int = 0
    api_rate_limited: int = 0


def add_partitions(instance: dg.DagsterInstance, names: Iterable[str]) -> None:
    known = set(instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME))
    instance.add_dynamic_partitions(
        CONNECTION_PARTITIONS_NAME, [n for n in names if n not in known]
    )


def run_daily_sync(
    instance: dg.DagsterInstance,
    names: Iterable[str],
    on_done: Callable[[str, bool], None] = lambda _name, _ok: None,
) -> SyncOutcome:
    """One run per connection, so one failing connection fails alone."""
    from pipelines.definitions import defs  # after the environment is prepared

    names = list(names)
    add_partitions(instance, names)
    job = defs().resolve_job_def(DAILY_SYNC_JOB)
    outcome = SyncOutcome()
    for name in names:
        result = job.execute_in_process(
            instance=instance,
            partition_key=name,
            raise_on_error=False,
            run_config=QUIET_CONSOLE,
            tags={"connection": name, "launched_by": "tiktok-crm-sync"},
        )
        outcome.run_ids.append(result.run_id)
        for event in result.get_asset_materialization_events():
            metadata = event.step_materialization_data.materialization.metadata
            for attr, key in (
                ("api_requests", "api_requests"),
                ("api_retries", "api_retries"),
                ("api_rate_limited", "api_rate_limited"),
            ):
                if key in metadata:
                    setattr(outcome, attr, getattr(outcome, attr) + int(metadata[key].value))
        if result.success:
            outcome.succeeded.append(name)
        else:
            outcome.failed[name] = _failure_text(result)
        on_done(name, result.success)
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

"""Fail the runs of `sync`/`demo` whose process died, when only the daemon is running.

Those runs execute inside the CLI process, so neither the code server nor run monitoring knows
their worker: a killed CLI left them STARTED, holding a `tiktok_api` pool slot and counting
against the run queue, and the scheduled runs queued behind them silently. The next CLI command
reaps them too; this sensor does it every minute for a machine where nobody runs the CLI again.
It judges only runs owned on the host it runs on (pipelines/run_owner.py).
"""

import dagster as dg

from pipelines.run_owner import free_slots_of_finished_runs, reap_dead_runs
from resources.configurable import StateDatabaseResource

REAPER = "the dead-run reaper sensor"


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_cli_run_reaper_sensor(
    context: dg.SensorEvaluationContext, state_db: StateDatabaseResource
) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance, state_db.release_run_leases, REAPER)
    for run in reaped:
        context.log.warning(run.line())
    freed = free_slots_of_finished_runs(context.instance)
    if freed:
        context.log.info("freed the pool slots still held by ended runs %s", ", ".join(freed))
    return dg.SkipReason(
        f"reaped {len(reaped)} run(s) whose process died; freed slots of {len(freed)} ended run(s)"
    )

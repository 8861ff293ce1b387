"""The code location test_daemon_crash loads in `dagster-daemon`: a probe job and the reaper sensor.

`crash_probe` has the daily sync's shape where it matters here: one step in the `tiktok_api` pool,
run in the run worker process (in-process executor, as tiktok_daily_sync by default). Its first
attempt writes the worker's pid to PROBE_DIR and blocks until the test SIGKILLs that process; a
later attempt (Dagster's retry) writes its pid and succeeds. The reaper sensor is the project's,
on the state database the test's CLI children use.
"""

import os
import time
from pathlib import Path

import dagster as dg

from pipelines.defs.sync.assets import TIKTOK_POOL
from pipelines.defs.sync.reaper import dead_cli_run_reaper_sensor
from resources import settings
from resources.configurable import StateDatabaseResource


@dg.op(pool=TIKTOK_POOL)
def crash_probe_step() -> None:
    probe = Path(os.environ["PROBE_DIR"])
    attempt = len(list(probe.glob("attempt-*")))
    (probe / f"attempt-{attempt}").write_text(str(os.getpid()))
    while attempt == 0:  # the first worker waits for its SIGKILL
        time.sleep(1)


@dg.job(executor_def=dg.in_process_executor)
def crash_probe() -> None:
    crash_probe_step()


defs = dg.Definitions(
    jobs=[crash_probe],
    sensors=[dead_cli_run_reaper_sensor],
    resources={"state_db": StateDatabaseResource(url=settings.state_database_url())},
)

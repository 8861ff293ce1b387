"""Dead runs when only the daemon runs: `dagster-daemon run` as a real process, real SIGKILLs.

The instance is the project's dagster.yaml with short run-monitoring intervals (2 s instead of
60 s), in the test's DAGSTER_HOME; the daemon loads tests/reliability/daemon_probe.py (a probe
job with the daily sync's shape, and the project's reaper sensor).

- A run launched through the queue (`dagster job launch`) has its worker SIGKILLed mid-step: it
  must be marked failed (the code server that launched the worker notices its death), retried by
  the run-retry daemon (the retry succeeds), and its pool slot freed (run monitoring's
  `free_slots_after_run_end_seconds`: the dead worker never released it).
- A `sync` CLI child SIGKILLed mid-sync, with no further CLI command: the reaper sensor must mark
  its run failed and free its slot and leases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.instance_home import PROJECT_YAML, create_instance_storage
from tests.reliability.test_zombie_runs import (
    PROCESS_TIMEOUT_S,
    SLOW_MS,
    api_requests,
    claimed_slots,
    failure_message,
    lease_count,
    names,  # noqa: F401 (fixture)
    runs_with,
    simulator,  # noqa: F401 (fixture)
    start_sync,
    wait_until,
)

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
PARENT_RUN_TAG = "dagster/parent_run_id"
WILL_RETRY_TAG = "dagster/will_retry"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Path]:
    """`dagster-daemon run` on the project's settings, polling every 2 s; yields the workspace."""
    home = Path(os.environ["DAGSTER_HOME"])
    config = yaml.safe_load(PROJECT_YAML.read_text())
    config["run_monitoring"].update(poll_interval_seconds=2, free_slots_after_run_end_seconds=2)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    create_instance_storage()  # before the daemon and the test's commands race to create it
    workspace = tmp_path / "workspace.yaml"
    location = {
        "module_name": "tests.reliability.daemon_probe",
        "working_directory": str(REPO),
        "location_name": "probe",
    }
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    os.environ["PROBE_DIR"] = str(tmp_path)
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        cwd=REPO,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its code server goes down with it
    )
    try:
        yield workspace
    finally:
        print(seen(tmp_path))  # shown when the test failed: what the instance and daemon saw
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def seen(tmp_path: Path) -> str:
    """The runs, the latest run's last events and the daemon's last lines."""
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        records = instance.get_records_for_run(runs[0].run_id).records if runs else []
    statuses = [f"{run.run_id[:8]} {run.status.value}" for run in runs]
    events = [
        f"{r.event_log_entry.dagster_event_type}: {r.event_log_entry.message}" for r in records
    ]
    log = (tmp_path / "daemon.log").read_text()[-4000:]
    return f"runs: {statuses}\nlatest run's events: {events[-12:]}\ndaemon log:\n{log}"


def run_by_id(run_id: str) -> dg.DagsterRun | None:
    with dg.DagsterInstance.get() as instance:
        return instance.get_run_by_id(run_id)


def retry_of(run_id: str) -> dg.DagsterRun | None:
    with dg.DagsterInstance.get() as instance:
        retries = instance.get_runs(filters=dg.RunsFilter(tags={PARENT_RUN_TAG: run_id}))
    return retries[0] if retries else None


def test_a_daemon_run_whose_worker_is_killed_fails_is_retried_and_frees_its_slot(daemon, tmp_path):
    launch = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-w", str(daemon), "-j", "crash_probe"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
    )
    assert launch.returncode == 0, launch.stderr[-2000:]
    first_attempt = tmp_path / "attempt-0"
    wait_until(first_attempt.exists, "probe step running in a launched worker")
    (original,) = runs_with(dg.DagsterRunStatus.STARTED)
    assert claimed_slots() == 1
    os.kill(int(first_attempt.read_text()), signal.SIGKILL)
    killed_at = time.monotonic()

    wait_until(
        lambda: run_by_id(original.run_id).status == dg.DagsterRunStatus.FAILURE, "failed run"
    )
    failed_after = time.monotonic() - killed_at
    wait_until(lambda: retry_of(original.run_id) is not None, "retry run")
    retried_after = time.monotonic() - killed_at
    wait_until(
        lambda: retry_of(original.run_id).status == dg.DagsterRunStatus.SUCCESS, "retry succeeded"
    )
    wait_until(lambda: claimed_slots() == 0, "freed pool slot")
    assert run_by_id(original.run_id).tags.get(WILL_RETRY_TAG) == "true"
    assert (tmp_path / "attempt-1").exists()  # the retry ran the step again, in a new worker
    print(f"killed worker: failed after {failed_after:.1f} s, retried after {retried_after:.1f} s")


def test_the_reaper_sensor_fails_a_killed_cli_run_when_only_the_daemon_runs(
    simulator,  # noqa: F811
    names,  # noqa: F811
    daemon,
    tmp_path,
):
    simulator.set(latency_ms=SLOW_MS)
    before = api_requests(simulator)
    child, _ = start_sync(tmp_path, "killed", "--all")
    wait_until(lambda: api_requests(simulator) > before, "TikTok request", child)
    wait_until(lambda: claimed_slots() >= 1, "claimed pool slot", child)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=PROCESS_TIMEOUT_S)
    (zombie,) = runs_with(dg.DagsterRunStatus.STARTED)
    assert lease_count() >= 1

    wait_until(lambda: run_by_id(zombie.run_id).status == dg.DagsterRunStatus.FAILURE, "reaping")
    assert "died; marked failed by the dead-run reaper sensor" in failure_message(zombie.run_id)
    assert claimed_slots() == 0 and lease_count() == 0

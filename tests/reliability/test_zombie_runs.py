"""No zombie runs: `tiktok-crm-sync sync` SIGKILLed mid-sync, then run again, as real processes.

Round trip: the TikTok simulator runs in this test process (live-mode app, connections registered
through its OAuth); each `sync` is a child process (`python -m pipelines.cli sync ...`) on the
instance in the test's DAGSTER_HOME (the project's dagster.yaml: 4 `tiktok_api` pool slots). The
simulator answers slowly while a sync is to be killed, so the kill lands inside the run's step,
with its pool slot and connection leases held. The instance, the state database's leases, the
warehouse and the children's output and exit codes are read back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.instance_home import use_project_instance
from pipelines.run_owner import PID_TAG
from resources import settings
from resources.connections.leases import leases
from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.warehouse.store import Warehouse
from simulators.tiktok import SimulatorConfig, TikTokSimulator
from tests.pipelines.helpers import connect, use_live_app

REPO = Path(__file__).parents[2]
POOL = "tiktok_api"
SLOW_MS = (2_000, 2_000)  # each TikTok answer takes 2 s: a kill lands mid-sync
PROCESS_TIMEOUT_S = 180.0  # a bound on waiting for a child, never an assertion on speed
POLL_S = 0.2
HOLD_MS = (15_000, 15_000)  # a holder holds its slot for a minute or more: seen before it ends


@pytest.fixture
def simulator() -> Iterator[TikTokSimulator]:
    # Five accounts with videos (every 4th account has none by default: not here).
    sim = TikTokSimulator(
        SimulatorConfig(seed=11, accounts=5, videos_per_account=30, zero_video_every=0)
    )
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def names(simulator: TikTokSimulator) -> list[str]:
    use_project_instance()  # the project's dagster.yaml, before this test reads the instance
    use_live_app(simulator)
    os.environ["TIKTOK_API_BASE_URL"] = simulator.base_url
    os.environ["TIKTOK_AUTH_BASE_URL"] = simulator.base_url
    store = ConnectionStore(make_engine(settings.state_database_url()))
    names = [f"creator-{letter}" for letter in "abcde"]
    for index, name in enumerate(names):
        connect(simulator, store, name, account=index)
    return names


def start_sync(tmp_path: Path, label: str, *args: str) -> tuple[subprocess.Popen, Path]:
    """A `sync` child; its stderr (progress, reaped runs, the wait line) goes to a file."""
    err = tmp_path / f"{label}.err"
    child = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sync", *args],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
    )
    child.stderr_path = err  # read back by wait_until when the child exits early
    return child, err


def wait_until(condition: Callable[[], bool], what: str, child: subprocess.Popen | None = None):
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while not condition():
        if child is not None and child.poll() is not None:
            said = _stderr_of(child)
            pytest.fail(f"the child exited ({child.returncode}) before {what}: {said}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {PROCESS_TIMEOUT_S} s")
        time.sleep(POLL_S)


def _stderr_of(child: subprocess.Popen) -> str:
    """What a `start_sync` child said on stderr (its last lines), for a failure message."""
    path = getattr(child, "stderr_path", None)
    return path.read_text()[-2000:] if path is not None and path.exists() else "(no stderr file)"


def api_requests(simulator: TikTokSimulator) -> int:
    stats = [value for value in simulator.stats().values() if isinstance(value, dict)]
    return sum(value.get("requests", 0) for value in stats)


def runs_with(status: dg.DagsterRunStatus) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(statuses=[status])))


def slot_holders() -> set[str]:
    with dg.DagsterInstance.get() as instance:
        return {
            slot.run_id
            for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        }


def claimed_slots() -> int:
    with dg.DagsterInstance.get() as instance:
        return len(instance.event_log_storage.get_concurrency_info(POOL).claimed_slots)


def run_of(child: subprocess.Popen) -> str | None:
    """The run a `sync` child owns (by its owner pid tag) once it holds a pool slot."""
    owned = [
        run.run_id
        for run in runs_with(dg.DagsterRunStatus.STARTED)
        if run.tags.get(PID_TAG) == str(child.pid)
    ]
    return owned[0] if owned and owned[0] in slot_holders() else None


def lease_count() -> int:
    with make_engine(settings.state_database_url()).connect() as db:
        return len(db.execute(leases.select()).all())


def failure_message(run_id: str) -> str:
    with dg.DagsterInstance.get() as instance:
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return events[-1].message if events else ""


def test_five_killed_syncs_are_reaped_and_a_sixth_completes(simulator, names, tmp_path):
    killed: list[str] = []
    for attempt in range(5):
        simulator.set(latency_ms=SLOW_MS)
        before = api_requests(simulator)
        child, err = start_sync(tmp_path, f"killed-{attempt}", "--all")
        wait_until(lambda b=before: api_requests(simulator) > b, "TikTok request", child)
        wait_until(lambda: claimed_slots() >= 1, "claimed pool slot", child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=PROCESS_TIMEOUT_S)
        # The zombie: STARTED forever, holding a slot. Earlier zombies were reaped by this child.
        started = runs_with(dg.DagsterRunStatus.STARTED)
        assert len(started) == 1 and started[0].run_id not in killed
        assert claimed_slots() == 1
        if killed:
            assert f"run {killed[-1]} was left STARTED by process" in err.read_text()
        killed.append(started[0].run_id)

    simulator.set(latency_ms=(0, 0))
    child, err = start_sync(tmp_path, "sixth", "--all")
    out, _ = child.communicate(timeout=PROCESS_TIMEOUT_S)
    stderr = err.read_text()
    assert child.returncode == 0, stderr
    assert f"synced {len(names)} of {len(names)} connections" in out
    reaped_lines = [line for line in stderr.splitlines() if "was left STARTED by process" in line]
    assert len(reaped_lines) == 1 and killed[-1] in reaped_lines[0]
    assert "its pool slot and" in reaped_lines[0]
    warehouse = Warehouse(make_engine(settings.warehouse_url()))
    for name in names:
        assert warehouse.count("tiktok_videos", connection_name=name) == 30
    # Every killed run failed with the reason; nothing is left holding a slot or a lease.
    failed = {run.run_id for run in runs_with(dg.DagsterRunStatus.FAILURE)}
    assert set(killed) <= failed
    for run_id in killed:
        assert "died; marked failed by tiktok-crm-sync (process" in failure_message(run_id)
    assert not runs_with(dg.DagsterRunStatus.STARTED)
    assert claimed_slots() == 0 and lease_count() == 0


def test_a_sync_waiting_for_a_slot_says_why_stops_on_signals_and_reaps_dead_holders(
    simulator, names, tmp_path
):
    # Four syncs hold the four slots: each is frozen (SIGSTOP) mid-sync once it holds one, so it
    # stays alive, with its slot, for as long as the test needs.
    simulator.set(latency_ms=HOLD_MS)
    holders = [start_sync(tmp_path, f"holder-{name}", name)[0] for name in names[:4]]
    frozen: dict[int, str] = {}  # holder pid -> its run

    def freeze_holders() -> bool:
        for holder in holders:
            if holder.pid not in frozen and (run_id := run_of(holder)) is not None:
                holder.send_signal(signal.SIGSTOP)
                frozen[holder.pid] = run_id
            elif holder.poll() is not None:
                said = _stderr_of(holder)
                pytest.fail(f"holder {holder.pid} exited ({holder.returncode}) unfrozen: {said}")
        return len(frozen) == len(holders)

    wait_until(freeze_holders, "four frozen slot holders")
    holder_runs = set(frozen.values())
    assert claimed_slots() == 4 and len(holder_runs) == 4

    for stop in (signal.SIGINT, signal.SIGTERM):
        waiter, err = start_sync(tmp_path, f"waiter-{stop.name}", names[4])
        wait_until(lambda e=err: "waiting for a slot" in e.read_text(), "wait line", waiter)
        line = next(line for line in err.read_text().splitlines() if "waiting for a slot" in line)
        assert all(run_id in line for run_id in holder_runs) and "Ctrl-C" in line
        waiter.send_signal(stop)
        waiter.wait(timeout=PROCESS_TIMEOUT_S)  # the assertion: it ends at all
        assert waiter.returncode != 0
    assert claimed_slots() == 4  # the interrupted waiters started no run, took no slot

    # The holders die while a sync waits: it reaps them on its next look and runs.
    waiter, err = start_sync(tmp_path, "waiter-last", names[4])
    wait_until(lambda: "waiting for a slot" in err.read_text(), "wait line", waiter)
    for holder in holders:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=PROCESS_TIMEOUT_S)
    simulator.set(latency_ms=(0, 0))
    out, _ = waiter.communicate(timeout=PROCESS_TIMEOUT_S)
    stderr = err.read_text()
    assert waiter.returncode == 0, stderr
    assert "synced 1 of 1 connections" in out
    reaped = [line for line in stderr.splitlines() if "was left STARTED by process" in line]
    assert len(reaped) == 4 and all(any(r in line for line in reaped) for r in holder_runs)
    assert claimed_slots() == 0 and lease_count() == 0

"""Who owns an in-process run, and what happens to a run whose owner died.

`sync` and `demo` execute their runs inside the CLI process. When that process is SIGKILLed (a
closed laptop, an OOM kill, a CI timeout) nothing in Dagster ever hears of it: the run stays
STARTED forever, keeps its `tiktok_api` pool slot and counts against the run queue's limit, and
its connection leases block the next sync. So every such run carries its owner as tags: the host
and its boot id, the pid, the process start time (so that a reused pid is not taken for the
owner) and a random owner id. `reap_dead_runs` finds the runs whose owner is provably dead on
this host, marks them failed with the reason, frees their pool slots and their leases. It runs
before each `sync`/`demo`, while a sync waits for a slot, and every minute in the daemon (a
sensor, pipelines/defs/sync/reaper.py). A run owned on another host is never judged from here.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dagster as dg

LAUNCHED_BY_TAG, CLI_LAUNCHER = "launched_by", "tiktok-crm-sync"
HOST_TAG = "tiktok-crm-sync/owner_host"
BOOT_TAG = "tiktok-crm-sync/owner_boot_id"
PID_TAG = "tiktok-crm-sync/owner_pid"
START_TAG = "tiktok-crm-sync/owner_start"  # clock ticks after boot, /proc/<pid>/stat field 22
OWNER_ID_TAG = "tiktok-crm-sync/owner_id"
# A CLI run has no code location the daemon could re-launch it from; its connections sync again
# with the next `sync` or the schedule. Without this the daemon would try and log that it can't.
NO_DAEMON_RETRY = {"dagster/max_retries": "0"}
ALIVE_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
POOL_POLL_S = 2.0  # how often a waiting sync looks for a free slot (and for dead holders)


@dataclass(frozen=True)
class Owner:
    host: str
    boot_id: str  # "" where the system has no /proc (then only the pid is checked)
    pid: int
    start: str  # "" likewise
    owner_id: str

    def tags(self) -> dict[str, str]:
        return {
            LAUNCHED_BY_TAG: CLI_LAUNCHER,
            HOST_TAG: self.host,
            BOOT_TAG: self.boot_id,
            PID_TAG: str(self.pid),
            START_TAG: self.start,
            OWNER_ID_TAG: self.owner_id,
            **NO_DAEMON_RETRY,
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Owner | None:
        """The owner a run recorded; None for a run from before owners were recorded."""
        pid = tags.get(PID_TAG, "")
        if HOST_TAG not in tags or not pid.isdigit():
            return None
        return cls(
            host=tags[HOST_TAG],
            boot_id=tags.get(BOOT_TAG, ""),
            pid=int(pid),
            start=tags.get(START_TAG, ""),
            owner_id=tags.get(OWNER_ID_TAG, ""),
        )


@dataclass(frozen=True)
class ReapedRun:
    run_id: str
    pid: int
    host: str
    slots_freed: bool
    leases_freed: int

    def line(self) -> str:
        return (
            f"run {self.run_id} was left STARTED by process {self.pid} on {self.host}, which "
            f"died: marked failed, {'its pool slot' if self.slots_freed else 'no pool slot'} "
            f"and {self.leases_freed} connection lease(s) freed"
        )


def _boot_id() -> str:
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks after boot; None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.rsplit(")", 1)[1].split()[19]


@cache
def current_owner() -> Owner:
    """This process as a run owner (one random owner id per process)."""
    pid = os.getpid()
    return Owner(
        host=socket.gethostname(),
        boot_id=_boot_id(),
        pid=pid,
        start=process_start(pid) or "",
        owner_id=uuid.uuid4().hex,
    )


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_dead(owner: Owner, here: Owner) -> bool:
    """True only when the owner provably died: it ran on this host and is no longer running."""
    if owner.host != here.host or owner.owner_id == here.owner_id:
        return False
    if owner.boot_id and here.boot_id and owner.boot_id != here.boot_id:
        return True  # the machine rebooted since: every process of that boot is gone
    if not owner.start or not here.start:  # no /proc: a pid is all there is to go by
        return not _pid_exists(owner.pid)
    return process_start(owner.pid) != owner.start


def reap_dead_runs(
    instance: dg.DagsterInstance,
    release_leases: Callable[[str], int],
    reaper: str,
) -> list[ReapedRun]:
    """Fail the unfinished CLI runs whose owner died on this host; free their slots and leases."""
    here = current_owner()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=ALIVE_STATUSES, tags={LAUNCHED_BY_TAG: CLI_LAUNCHER})
    )
    reaped = []
    for record in records:
        run = record.dagster_run
        owner = Owner.from_tags(dict(run.tags))
        if owner is None or not owner_is_dead(owner, here):
            continue
        latest = instance.get_run_by_id(run.run_id)  # another reaper may have just failed it
        if latest is None or latest.status not in ALIVE_STATUSES:
            continue
        instance.report_run_failed(
            run,
            f"its process {owner.pid} on {owner.host} died; marked failed by {reaper}",
        )
        held = run.run_id in held_slot_run_ids(instance)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(
            ReapedRun(run.run_id, owner.pid, owner.host, held, release_leases(run.run_id))
        )
    return reaped


def held_slot_run_ids(instance: dg.DagsterInstance) -> set[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return set()
    return set(storage.get_concurrency_run_ids())


def free_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[str]:
    """Slots still held by runs that ended (force-terminated in the UI, reaped elsewhere)."""
    held = held_slot_run_ids(instance)
    if not held:
        return []
    finished = instance.get_run_records(
        filters=dg.RunsFilter(
            run_ids=sorted(held),
            statuses=[
                dg.DagsterRunStatus.SUCCESS,
                dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.CANCELED,
            ],
        )
    )
    freed = [record.dagster_run.run_id for record in finished]
    for run_id in freed:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return freed


def lease_releaser(state_database_url: str) -> Callable[[str], int]:
    """Frees a run's connection leases in this state database."""
    from resources.connections.leases import release_run_leases
    from resources.database import make_engine

    engine = make_engine(state_database_url)
    return lambda run_id: release_run_leases(engine, run_id)


def cli_reaper() -> str:
    return f"tiktok-crm-sync (process {os.getpid()})"


def reap_before_start(instance: dg.DagsterInstance, state_database_url: str) -> list[str]:
    """What `sync` and `demo` do first: one line per dead run reaped."""
    reaped = reap_dead_runs(instance, lease_releaser(state_database_url), cli_reaper())
    free_slots_of_finished_runs(instance)
    return [run.line() for run in reaped]


def wait_for_pool_slot(
    instance: dg.DagsterInstance,
    pool: str,
    release_leases: Callable[[str], int],
    say: Callable[[str], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once `pool` has a free slot, saying once which runs hold them all.

    Dagster's in-process executor would wait for the slot itself, but in a loop that spins a
    core and defers SIGINT/SIGTERM until the run ends, so the wait happens here instead, in a
    plain sleep that Ctrl-C and SIGTERM interrupt. Holders whose process died are reaped on
    every poll. (Between this check and Dagster's claim another process can still take the
    slot; the window is one database round trip.)
    """
    told = False
    while True:
        for run in reap_dead_runs(instance, release_leases, cli_reaper()):
            say(run.line())
        free_slots_of_finished_runs(instance)
        info = instance.event_log_storage.get_concurrency_info(pool)
        # No limit known (pool never used, storage without pools): Dagster will not wait either.
        if not info.limit or len(info.claimed_slots) < info.limit:
            return
        if not told:
            holders = ", ".join(sorted({slot.run_id for slot in info.claimed_slots}))
            say(
                f"waiting for a slot of the {pool!r} pool: all {info.limit} are held by run(s) "
                f"{holders}. Ctrl-C stops waiting. Runs whose process died on this machine are "
                "freed automatically; to free a stuck one, terminate it in the Dagster UI (Runs, "
                "the run, Terminate)"
            )
            told = True
        sleep(POOL_POLL_S)

"""One sync at a time per connection: leases in the state database, across real processes.

Two processes (as two run workers or Celery workers would be) take the lease on one connection
at the same moment, on SQLite and on PostgreSQL: their hold intervals, logged by each process,
never overlap, and the second one to arrive waits rather than failing. A holder that waits too
long fails that connection with a message naming the holder.

Takeover (issue 18): holders carry a faked identity (host, boot id, PID and its start time, a
random id) and the stores an injected clock, so "PID 1 of the previous container" and "minutes
later" cost no real waiting. One real-process test watches a worker's heartbeat renew its lease,
SIGKILLs it, and takes the lease over at once.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from resources.connections.leases import (
    LEASE_TTL_S,
    RENEW_EVERY_S,
    ConnectionBusy,
    HolderIdentity,
    LeaseStore,
    current_identity,
    leases,
)
from resources.database import add_missing_columns, make_engine

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'state.db'}"


def holder_process(
    url: str, holder: str, hold_s: float, log: str, wait_s: float = 30.0, *lease_times: float
):
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.resources.lease_worker", url, holder, "creator-a"),
            *(str(hold_s), log, str(wait_s), *map(str, lease_times)),
        ],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )


def intervals(log: str) -> dict[str, tuple[float, float]]:
    found: dict[str, dict[str, float]] = {}
    with open(log, encoding="utf-8") as lines:
        for line in lines:
            holder, what, when = line.split()
            found.setdefault(holder, {})[what] = float(when)
    return {holder: (times["start"], times["end"]) for holder, times in found.items()}


def test_two_processes_never_hold_one_connection_at_once(state_url, tmp_path):
    LeaseStore(make_engine(state_url), holder="setup")  # the table exists before the race
    log = str(tmp_path / "holds.log")
    first = holder_process(state_url, "run-1", 1.5, log)
    second = holder_process(state_url, "run-2", 1.5, log)
    assert first.wait(timeout=60) == 0, first.stderr.read()
    assert second.wait(timeout=60) == 0, second.stderr.read()
    (_, first_end), (second_start, _) = sorted(intervals(log).values())
    assert first_end <= second_start  # the second waited for the first: no overlap, no refusal


class Clock:
    """The stores' clock: moved by hand, and by the `sleep` of a store that waits."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def identity(
    host: str = "pod-a", boot: str = "boot-1", pid: int = 1, started: str = "100", ns: str = "ns-1"
):
    return HolderIdentity(host, boot, pid, started, f"{host}-{pid}-{started}", ns)


def processes(**running: str):
    """A fake process table, PID -> start time; a PID not in it is dead."""
    return lambda pid: running.get(str(pid))


def store(engine, holder: str, me: HolderIdentity, clock: Clock, **table: str) -> LeaseStore:
    return LeaseStore(
        engine,
        holder=holder,
        clock=clock,
        sleep=clock.sleep,
        identity=me,
        started=processes(**table),
        wait_s=0.0,
    )


def test_a_holder_that_waits_too_long_fails_naming_the_other(state_url, tmp_path):
    engine = make_engine(state_url)
    clock = Clock()
    other = store(engine, "run-other", identity(host="pod-b"), clock)
    assert other._try_acquire("creator-a") is None  # held elsewhere, alive
    mine = store(engine, "run-mine", identity(), clock)
    mine.wait_s = 5.0
    busy = "being synced by another run \\(run-other\\)"
    with pytest.raises(ConnectionBusy, match=busy), mine.hold("creator-a"):
        pass
    assert clock.now >= 1_000_005.0  # it waited (on the injected clock) before giving up


def test_pid_1_of_a_killed_container_is_taken_over_by_the_next_within_minutes(state_url):
    """The issue's case: the killed container's sync was PID 1; the next container's is PID 1
    too, with the same host name, in a new PID namespace. PID 1 being alive says nothing."""
    engine = make_engine(state_url)
    clock = Clock()
    killed = store(engine, "run old", identity(started="100", ns="ns-1"), clock)
    assert killed._try_acquire("creator-a") is None  # then SIGKILL: no renewal ever again
    taken = clock.now
    new = store(engine, "run new", identity(started="9000", ns="ns-2"), clock, **{"1": "9000"})
    clock.now = taken + 60
    assert new._try_acquire("creator-a") == "run old"  # a minute later it might be alive
    clock.now = taken + LEASE_TTL_S
    assert new._try_acquire("creator-a") is None  # minutes, not two hours
    with engine.connect() as db:
        row = db.execute(sa.select(leases)).one()
    assert (row.holder, row.pid_started, row.holder_id) == ("run new", "9000", "pod-a-1-9000")


def test_a_reused_pid_1_in_the_same_namespace_is_taken_over_at_once(state_url):
    """A restart inside one PID namespace (the same host, boot and namespace): PID 1 is alive
    again, but it is us, a process that started later, so the old holder is gone."""
    engine = make_engine(state_url)
    clock = Clock()
    old = store(engine, "run old", identity(started="100"), clock)
    assert old._try_acquire("creator-a") is None
    new = store(engine, "run new", identity(started="9000"), clock, **{"1": "9000"})
    assert new._try_acquire("creator-a") is None


@pytest.mark.parametrize(
    "other",
    [
        # another container on the same node: its own PID namespace and host name, same kernel
        identity(host="pod-b", pid=1, started="100", ns="ns-2"),
        # ... even with the same host name (host networking): its PIDs are not ours to look up
        identity(host="pod-a", pid=1, started="100", ns="ns-2"),
        # another machine entirely
        identity(host="pod-c", boot="boot-2", pid=1, started="100"),
    ],
)
def test_a_holder_elsewhere_keeps_the_lease_while_it_renews_and_loses_it_minutes_after(
    state_url, other
):
    engine = make_engine(state_url)
    clock = Clock()
    holder = store(engine, "run far", other, clock)
    with holder.hold("creator-a"):
        # PID 1 here is alive and started at another time: that says nothing about pod-b's PID 1.
        mine = store(engine, "run near", identity(started="9000"), clock, **{"1": "9000"})
        for _ in range(20):  # ten minutes of heartbeats: the lease never expires
            clock.now += RENEW_EVERY_S
            assert holder.renew() == {"creator-a"}
            assert mine._try_acquire("creator-a") == "run far"
        # The holder is killed: renewals stop. Within one TTL (minutes), the lease is free.
        clock.now += LEASE_TTL_S - 1
        assert mine._try_acquire("creator-a") == "run far"
        clock.now += 1
        assert mine._try_acquire("creator-a") is None
        assert holder.renew() == set()  # the stalled holder learns it lost the lease
    assert LEASE_TTL_S <= 5 * 60


def test_a_dead_or_reused_pid_on_this_host_frees_the_lease_and_a_live_one_keeps_it(state_url):
    engine = make_engine(state_url)
    clock = Clock()
    for name, pid in (("dead", 41), ("reused", 42), ("alive", 43)):
        assert store(engine, f"run {name}", identity(pid=pid), clock)._try_acquire(name) is None
    mine = store(engine, "run mine", identity(pid=7), clock, **{"42": "555", "43": "100", "7": "1"})
    assert mine._try_acquire("dead") is None
    assert mine._try_acquire("reused") is None  # PID 42 now belongs to a process started later
    assert mine._try_acquire("alive") == "run alive"
    with mine.hold("dead"):
        pass
    with engine.connect() as db:
        held = {row.connection_name for row in db.execute(sa.select(leases))}
    assert held == {"reused", "alive"}  # a finished hold releases its lease


def test_a_lease_table_of_an_earlier_version_gains_the_columns_and_its_rows_expire(state_url):
    engine = make_engine(state_url)
    with engine.begin() as db:
        db.execute(sa.text("DROP TABLE IF EXISTS connection_leases"))
    old = sa.MetaData()
    old_table = sa.Table(
        "connection_leases",
        old,
        sa.Column("connection_name", sa.String(63), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    old.create_all(engine)
    clock = Clock()
    taken = clock.now
    with engine.begin() as db:  # PID 1 of a killed container, two hours' expiry, never renewed
        db.execute(
            old_table.insert(),
            {
                "connection_name": "creator-a",
                "holder": "run old",
                "host": "pod-old",
                "pid": 1,
                "acquired_at": taken,
                "expires_at": taken + 7200,
            },
        )
    mine = store(engine, "run new", identity(), clock)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("connection_leases")}
    assert {"boot_id", "pid_started", "holder_id", "renewed_at"} <= columns
    assert add_missing_columns(engine, leases) == []  # idempotent
    assert mine._try_acquire("creator-a") == "run old"  # a minute ago it may still be syncing
    clock.now = taken + LEASE_TTL_S
    assert mine._try_acquire("creator-a") is None  # not two hours later


def wait_for(condition, what: str, timeout_s: float = 30.0) -> None:
    """Poll a real process's progress (no fixed sleeps), failing after a generous bound."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_real_holder_renews_while_it_runs_and_its_lease_is_free_once_sigkilled(
    state_url, tmp_path
):
    engine = make_engine(state_url)
    LeaseStore(engine, holder="setup")  # the table exists before the worker starts
    log = tmp_path / "holds.log"
    # A short TTL and heartbeat so renewals are visible in a second, not in minutes.
    worker = holder_process(state_url, "run-worker", 600, str(log), 30.0, 2.0, 0.1)
    try:
        wait_for(lambda: log.exists() and "start" in log.read_text(), "the worker's lease")

        def lease():
            with engine.connect() as db:
                return db.execute(sa.select(leases)).one()

        first = lease()
        assert first.pid == worker.pid and first.pid_started
        wait_for(lambda: lease().renewed_at > first.renewed_at, "a heartbeat renewal")
        mine = LeaseStore(engine, holder="run-next", wait_s=0.0)
        assert mine._try_acquire("creator-a") == "run-worker"  # alive and renewing: kept
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    # Same host and boot, its PID dead: taken over at once, long before the TTL.
    assert mine._try_acquire("creator-a") is None


def test_this_process_identity_is_more_than_a_pid():
    me = current_identity()
    assert me.pid == os.getpid() and me.pid_started.isdigit() and me.boot_id
    assert me.pid_namespace.startswith("pid:[")
    assert me.holder_id != current_identity().holder_id  # random per store


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_pid_1_of_another_pid_namespace_keeps_its_lease_alive_and_loses_it_once_killed(
    state_url, tmp_path
):
    """The issue's case with real processes: a worker that is PID 1 of its own PID namespace
    (as in a container) holds the lease; this process, whose PID 1 is another process, must not
    take it while the worker lives, and takes it once the SIGKILLed worker's lease expires."""
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no permission to create a PID namespace here")
    engine = make_engine(state_url)
    LeaseStore(engine, holder="setup")
    log = tmp_path / "holds.log"
    worker = subprocess.Popen(
        [
            *("unshare", "--pid", "--fork", "--mount-proc", "--kill-child"),
            *(sys.executable, "-m", "tests.resources.lease_worker", state_url, "run-pid-1"),
            *("creator-a", "600", str(log), "30", "2.0", "0.1"),
        ],
        cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: log.exists() and "start" in log.read_text(), "the worker's lease")
        with engine.connect() as db:
            row = db.execute(sa.select(leases)).one()
        assert row.pid == 1 and row.pid_namespace != current_identity().pid_namespace
        mine = LeaseStore(engine, holder="run-host", wait_s=0.0)
        assert mine._try_acquire("creator-a") == "run-pid-1"  # alive in its namespace: kept
    finally:
        worker.send_signal(signal.SIGKILL)  # unshare --kill-child takes PID 1 with it
        worker.wait(timeout=30)
    # Renewals have stopped: the lease expires one TTL (2 s here, 180 s in production) later.
    wait_for(lambda: mine._try_acquire("creator-a") is None, "the lease to expire")

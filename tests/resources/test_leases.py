"""One sync at a time per connection: leases in the state database, across real processes.

Two processes (as two run workers or Celery workers would be) take the lease on one connection
at the same moment, on SQLite and on PostgreSQL: their hold intervals, logged by each process,
never overlap, and the second one to arrive waits rather than failing. A holder that waits too
long fails that connection with a message naming the holder; a lease left by a dead process on
this machine is taken over at once, and a held lease of another machine only once it expires.
"""

import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from resources.database import make_engine
from resources.leases import ConnectionBusy, LeaseStore, leases

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'state.db'}"


def holder_process(url: str, holder: str, hold_s: float, log: str, wait_s: float = 30.0):
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.resources.lease_worker", url, holder, "creator-a"),
            *(str(hold_s), log, str(wait_s)),
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


def test_a_holder_that_waits_too_long_fails_naming_the_other(state_url, tmp_path):
    engine = make_engine(state_url)
    LeaseStore(engine, holder="run-other")._try_acquire("creator-a")  # held elsewhere, alive
    waited = []
    mine = LeaseStore(engine, holder="run-mine", wait_s=5.0, sleep=waited.append)
    clock = iter(range(100))
    mine._clock = lambda: float(next(clock))  # injected: no real waiting
    busy = "being synced by another run \\(run-other\\)"
    with pytest.raises(ConnectionBusy, match=busy), mine.hold("creator-a"):
        pass
    assert waited  # it waited before giving up


def test_a_dead_local_holder_is_taken_over_and_a_live_remote_one_only_when_expired(state_url):
    engine = make_engine(state_url)
    store = LeaseStore(engine, holder="run-new")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    now = time.time()
    rows = [
        {
            "connection_name": "dead-local",
            "holder": "run-old",
            "host": store._host,
            "pid": dead_pid,
            "acquired_at": now,
            "expires_at": now + 3600,
        },
        {
            "connection_name": "remote",
            "holder": "run-far",
            "host": "another-machine",
            "pid": 1,
            "acquired_at": now,
            "expires_at": now + 3600,
        },
        {
            "connection_name": "expired",
            "holder": "run-far",
            "host": "another-machine",
            "pid": 1,
            "acquired_at": now - 7200,
            "expires_at": now - 1,
        },
    ]
    with engine.begin() as db:
        db.execute(leases.insert(), rows)
    assert store._try_acquire("dead-local") is None
    assert store._try_acquire("remote") == "run-far"
    assert store._try_acquire("expired") is None
    with store.hold("dead-local"):
        pass
    with engine.connect() as db:
        held = {row.connection_name for row in db.execute(sa.select(leases))}
    assert held == {"remote", "expired"}  # a finished hold releases its lease

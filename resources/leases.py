"""One sync at a time per connection, across threads, processes and machines.

A sync holds a lease on its connection in the state database for as long as it works on it. Two
runs covering the same connection (a manual `sync` during the scheduled one, two Celery workers)
would otherwise both rotate its refresh token and both write its rows. The second one waits for
the lease up to `wait_s`, then fails that connection alone with a message naming the holder.

A lease whose holder died is taken over: at once when the holder was a process on this machine
that no longer exists, otherwise when it expires (`ttl_s`, renewed at every acquisition).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Column, Engine, Float, Integer, MetaData, Row, String, Table, delete, select
from sqlalchemy.exc import IntegrityError

from resources.database import create_tables

LEASE_TTL_S = 2 * 3600.0  # longer than any one connection's sync, even of 100,000 videos
LEASE_WAIT_S = 60.0
POLL_S = 0.5

metadata = MetaData()
leases = Table(
    "connection_leases",
    metadata,
    Column("connection_name", String(63), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)


class ConnectionBusy(RuntimeError):
    """Another sync holds the connection; this run leaves it alone."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseStore:
    def __init__(
        self,
        engine: Engine,
        holder: str,
        *,
        ttl_s: float = LEASE_TTL_S,
        wait_s: float = LEASE_WAIT_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl_s, self.wait_s = ttl_s, wait_s
        self._clock, self._sleep = clock, sleep
        self._host, self._pid = socket.gethostname(), os.getpid()
        create_tables(metadata, engine)

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        deadline = self._clock() + self.wait_s
        while (holder := self._try_acquire(name)) is not None:
            if self._clock() >= deadline:
                raise ConnectionBusy(
                    f"connection {name!r} is being synced by another run ({holder}); it was left "
                    "alone in this one. It syncs again with the next run, or re-run it once the "
                    "other run has ended"
                )
            self._sleep(POLL_S)
        try:
            yield
        finally:
            with self.engine.begin() as db:
                db.execute(
                    delete(leases).where(
                        leases.c.connection_name == name, leases.c.holder == self.holder
                    )
                )

    def _try_acquire(self, name: str) -> str | None:
        """None when the lease is ours now; else the current holder."""
        now = self._clock()
        row = {
            "connection_name": name,
            "holder": self.holder,
            "host": self._host,
            "pid": self._pid,
            "acquired_at": now,
            "expires_at": now + self.ttl_s,
        }
        try:
            with self.engine.begin() as db:
                current = db.execute(
                    select(leases).where(leases.c.connection_name == name)
                ).one_or_none()
                if current is not None:
                    if not self._takeover(current, now):
                        return current.holder
                    db.execute(delete(leases).where(leases.c.connection_name == name))
                db.execute(leases.insert().values(**row))
        except IntegrityError:  # another process took it between our read and our insert
            return "a concurrent run"
        return None

    def _takeover(self, current: Row, now: float) -> bool:
        if current.holder == self.holder or current.expires_at <= now:
            return True
        same_host = current.host == self._host
        return same_host and current.pid != self._pid and not _process_alive(current.pid)


def release_run_leases(engine: Engine, run_id: str) -> int:
    """Free the leases a run holds (its process died, so it can never free them); how many."""
    create_tables(metadata, engine)
    with engine.begin() as db:
        return db.execute(delete(leases).where(leases.c.holder == f"run {run_id}")).rowcount

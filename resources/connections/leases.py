"""One sync at a time per connection, across threads, processes, containers and machines.

A sync holds a lease on its connection in the state database for as long as it works on it. Two
runs covering the same connection (a manual `sync` during the scheduled one, two Celery workers)
would otherwise both rotate its refresh token and both write its rows. The second one waits for
the lease up to `wait_s`, then fails that connection alone with a message naming the holder.

A holder is known by more than a PID, which a container restarts at 1 every time: by its host
name, the kernel's boot id and its PID namespace, the PID's start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot), and a random id per `LeaseStore`. A heartbeat
thread renews every held lease each `RENEW_EVERY_S`; a lease not renewed for `ttl_s` has expired
and is taken over: the next container's sync takes a killed container's leases minutes later.
A lease whose holder is visibly gone (same host, boot and PID namespace, and that PID is dead or
is now another process) is taken over at once.

`holder` is what a user reads ("run <run_id>"); other code may release leases by it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Engine, Float, Integer, Row, String, Table, delete, select
from sqlalchemy.exc import IntegrityError

from resources.database import STATE_METADATA, add_missing_columns, create_tables

# A lease outlives its last renewal by this much. Long enough to ride out six missed renewals (a
# state database busy for its 30 s timeout, a long GC pause); short enough that a killed holder
# blocks its connections for minutes, not for the two hours the first version waited.
LEASE_TTL_S = 180.0
# How often the heartbeat renews: several renewals fit in one TTL, so one slow write is harmless.
RENEW_EVERY_S = 30.0
LEASE_WAIT_S = 60.0
POLL_S = 0.5
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")

log = logging.getLogger(__name__)

leases = Table(
    "connection_leases",
    STATE_METADATA,
    Column("connection_name", String(63), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    # Added by issue 18; NULL in rows an earlier version wrote (see `_legacy_expired`).
    Column("boot_id", String(64)),
    Column("pid_started", String(32)),
    Column("holder_id", String(32)),
    Column("renewed_at", Float),
    Column("pid_namespace", String(64)),
)


class ConnectionBusy(RuntimeError):
    """Another sync holds the connection; this run leaves it alone."""


@dataclass(frozen=True)
class HolderIdentity:
    """Who holds a lease: enough to tell a live process from a reused PID in another container."""

    host: str
    boot_id: str  # "" where the kernel does not say (not Linux)
    pid: int
    pid_started: str  # "" where /proc does not say
    holder_id: str
    # Processes of another PID namespace (another container sharing the host name) are not ours
    # to look up: the same PID here is another process.
    pid_namespace: str = ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def pid_start_time(pid: int, proc: Path = Path("/proc")) -> str:
    """Field 22 of /proc/<pid>/stat (start time in ticks since boot), or "" when unknown."""
    stat = _read(proc / str(pid) / "stat")
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def process_start(pid: int) -> str | None:
    """None when no process has this PID here; else its start time ("" when /proc cannot say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, run by another user
    return pid_start_time(pid)


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def current_identity() -> HolderIdentity:
    pid = os.getpid()
    return HolderIdentity(
        host=socket.gethostname(),
        boot_id=_read(BOOT_ID_PATH),
        pid=pid,
        pid_started=pid_start_time(pid),
        holder_id=secrets.token_hex(8),
        pid_namespace=_pid_namespace(),
    )


def holder_gone(
    row: Row, me: HolderIdentity, started: Callable[[int], str | None] = process_start
) -> bool:
    """True when the row's holder is certainly dead: it ran on this very machine, boot, host name
    and PID namespace, and its PID is free or now belongs to a process that started at another
    time (a reused PID, such as PID 1 of the next container). Anything else is judged by expiry."""
    if not row.boot_id or row.boot_id != me.boot_id or row.host != me.host:
        return False
    if not row.pid_namespace or row.pid_namespace != me.pid_namespace:
        return False
    if row.pid == me.pid and row.pid_started == me.pid_started:
        return False  # this very process: another store of ours, alive by definition
    now_started = started(row.pid)
    if now_started is None:
        return True
    return bool(row.pid_started and now_started and now_started != row.pid_started)


def _legacy_expired(row: Row, now: float) -> bool:
    """A row from before renewals (no holder_id) had a two-hour expiry nobody renews: it counts
    as expired one TTL after it was taken, like a lease whose heartbeat stopped."""
    return row.holder_id is None and row.acquired_at + LEASE_TTL_S <= now


class LeaseStore:
    def __init__(
        self,
        engine: Engine,
        holder: str,
        *,
        ttl_s: float = LEASE_TTL_S,
        wait_s: float = LEASE_WAIT_S,
        renew_every_s: float = RENEW_EVERY_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        identity: HolderIdentity | None = None,
        started: Callable[[int], str | None] = process_start,
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl_s, self.wait_s, self.renew_every_s = ttl_s, wait_s, renew_every_s
        self._clock, self._sleep = clock, sleep
        self.identity = identity or current_identity()
        self._started = started
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        create_tables(STATE_METADATA, engine, [leases])
        add_missing_columns(engine, leases)

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
        self._started_holding(name)
        try:
            yield
        finally:
            self._stopped_holding(name)
            with self.engine.begin() as db:
                db.execute(
                    delete(leases).where(
                        leases.c.connection_name == name,
                        leases.c.holder_id == self.identity.holder_id,
                    )
                )

    def renew(self) -> set[str]:
        """Push the expiry of every lease this store holds; returns the ones still ours."""
        with self._lock:
            held = set(self._held)
        if not held:
            return set()
        now = self._clock()
        mine = (leases.c.holder_id == self.identity.holder_id) & leases.c.connection_name.in_(held)
        with self.engine.begin() as db:
            db.execute(
                leases.update().where(mine).values(expires_at=now + self.ttl_s, renewed_at=now)
            )
            still = set(db.execute(select(leases.c.connection_name).where(mine)).scalars())
        for name in held - still:  # taken over while we stalled past the TTL
            log.warning("the lease on connection %r expired and was taken by another run", name)
        return still

    def _started_holding(self, name: str) -> None:
        with self._lock:
            self._held.add(name)
            if self._heartbeat is None:
                # A new event per thread: a thread told to stop never sees it cleared again.
                self._stop = threading.Event()
                self._heartbeat = threading.Thread(
                    target=self._beat,
                    args=(self._stop,),
                    name=f"lease-heartbeat {self.holder}",
                    daemon=True,
                )
                self._heartbeat.start()

    def _stopped_holding(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)
            if not self._held:
                self._stop.set()  # the thread ends; the next hold starts another
                self._heartbeat = None

    def _beat(self, stop: threading.Event) -> None:
        # Real time on purpose: the heartbeat must run while the sync works. Tests call `renew`.
        while not stop.wait(self.renew_every_s):
            try:
                self.renew()
            except Exception:  # a database blip: the next beat tries again, within the TTL
                log.warning("renewing connection leases failed; retrying", exc_info=True)

    def _try_acquire(self, name: str) -> str | None:
        """None when the lease is ours now; else the current holder."""
        now = self._clock()
        me = self.identity
        row = {
            "connection_name": name,
            "holder": self.holder,
            "host": me.host,
            "pid": me.pid,
            "acquired_at": now,
            "expires_at": now + self.ttl_s,
            "boot_id": me.boot_id,
            "pid_started": me.pid_started,
            "holder_id": me.holder_id,
            "renewed_at": now,
            "pid_namespace": me.pid_namespace,
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
        return _legacy_expired(current, now) or holder_gone(current, self.identity, self._started)


def release_run_leases(engine: Engine, run_id: str) -> int:
    """Free the leases a run holds (its process died, so it can never free them); how many."""
    create_tables(STATE_METADATA, engine, [leases])
    with engine.begin() as db:
        return db.execute(delete(leases).where(leases.c.holder == f"run {run_id}")).rowcount

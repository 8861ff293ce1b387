"""Single-flight token refresh across threads, processes and machines, per connection.

TikTok rotates refresh tokens: two workers refreshing one connection at once would burn it (the
loser's refresh token is already dead). The lock is held around "re-read the stored tokens,
refresh, store the rotated pair", so whoever comes second finds the new tokens and uses them.

- In-process: a `threading.Lock` per (state database, connection).
- PostgreSQL: `pg_advisory_xact_lock` on a hash of the connection name, in a transaction of its
  own; every process and machine using that state database sees it.
- SQLite: an exclusive file lock (`filelock`) on the connection's own lock file, in a folder beside
  the state database: every process on the machine sees it. Per connection, not one for the
  database: TikTok's access tokens live 24 hours, so the daily sync refreshes nearly every
  connection every day, and one lock for all of them made a run's refreshes go one at a time.
  Not on the state database itself: the token store writes through its own connections, which
  would wait for this lock forever. A connection removed leaves its empty lock file behind.
- Any other database: the in-process lock plus the store's compare-and-set on `token_version`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

LOCK_TIMEOUT_S = 60.0  # far above one refresh round trip; a stuck holder fails us, not hangs us
_NAMESPACE = "tiktok-crm-sync:refresh:"

_thread_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_thread_locks_guard = threading.Lock()


class RefreshLockTimeout(TimeoutError):
    """Another worker held the connection's refresh lock for longer than the timeout."""


def advisory_key(connection_name: str) -> int:
    """A signed 64-bit key, the same in every process (unlike `hash()`, which is salted)."""
    digest = hashlib.blake2b((_NAMESPACE + connection_name).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def refresh_lock(
    engine: Engine, connection_name: str, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the connection's refresh lock in this thread, process and database."""
    with _thread_locks_guard:
        local = _thread_locks[(str(engine.url), connection_name)]
    if not local.acquire(timeout=timeout_s):
        raise RefreshLockTimeout(_busy(connection_name, timeout_s))
    try:
        backend = engine.url.get_backend_name()
        if backend == "postgresql":
            with _postgres_lock(engine, connection_name, timeout_s):
                yield
        elif backend == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            with _file_lock(
                Path(f"{engine.url.database}.refresh-locks"), connection_name, timeout_s
            ):
                yield
        else:
            yield
    finally:
        local.release()


def _busy(connection_name: str, timeout_s: float) -> str:
    return (
        f"another run has been refreshing the tokens of connection {connection_name!r} for more "
        f"than {timeout_s:.0f}s; re-run the partition when it has finished"
    )


@contextmanager
def _postgres_lock(engine: Engine, connection_name: str, timeout_s: float) -> Iterator[None]:
    with engine.connect() as db:
        try:
            db.execute(
                text("SELECT set_config('lock_timeout', :ms, true)"),
                {"ms": f"{int(timeout_s * 1000)}ms"},
            )
            db.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(connection_name)}
            )
        except OperationalError as err:
            db.rollback()
            raise RefreshLockTimeout(_busy(connection_name, timeout_s)) from err
        try:
            yield
        finally:
            db.rollback()  # ends the transaction, which releases the advisory lock


@contextmanager
def _file_lock(folder: Path, connection_name: str, timeout_s: float) -> Iterator[None]:
    folder.mkdir(exist_ok=True)
    lock = FileLock(folder / f"{advisory_key(connection_name) & (2**64 - 1):016x}.lock")
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout as err:
        raise RefreshLockTimeout(_busy(connection_name, timeout_s)) from err
    try:
        yield
    finally:
        lock.release()

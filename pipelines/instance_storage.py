"""The Dagster instance's event log on SQLite, with one open connection per shard.

Every connection of a run is at least 8 Dagster events (planned, materialized, checks), and
Dagster's own SQLite event log opens a new engine and connection for every write and commits in
rollback-journal mode: 2-3 fsyncs a commit, 2-3 commits an event. Measured here (bench.clock,
docs/benchmarks.md "Dagster's fixed cost"): 12-80 ms an event, depending on the disk's load, so
1,000 connections cost minutes of event writes, in the step's one thread and, for the planned
events, before the run starts.

This subclass keeps the storage's schema, files and semantics and changes how it talks to them:
- one pooled connection per shard file (the last few shards, so a long-lived daemon or webserver
  does not keep a file open for every run it ever saw);
- WAL journal with synchronous=NORMAL: one write to the log per commit, synced at checkpoints.
  A process crash loses nothing committed; a power loss may lose the last commits, never the
  file (https://www.sqlite.org/wal.html). Readers and writers of other processes (daemon,
  webserver, run workers) keep working: WAL is made for that.
- a run shard's file is touched after each write: Dagster's webserver streams a run's logs by
  watching that file, and in WAL mode the file itself changes only at checkpoints;
- a batch of events (a run's planned events: one per asset and partition, 3,000 for a run of 500
  connections) is written in one transaction per shard, one statement per table, and its asset
  rows once per asset rather than once per partition: creating such a run took 3.4 s, now 1.0 s;
- a step's asset events (a materialization or check evaluation per asset and connection) are
  written behind the step, as such batches: the step hands an event over and goes on. They are
  written within FLUSH_SECONDS, before any other event of this process (a step's end, a log line:
  the order stays) and before this process reads the event log. `sync --all` of 200 connections
  took 21 s, now 13 s (docs/benchmarks.md). What a crash can lose is the last FLUSH_SECONDS of
  these events: the rows they describe are in the warehouse, the run is failed by the reaper,
  and the next sync materializes those connections again.

Dagster exposes its storages as configurable classes for exactly this (dagster.yaml's
`event_log_storage: module/class/config`), but the SQLite one and the class data of a configured
storage live in private modules (`dagster._core`, `dagster._serdes`): this module and its batch
writer (`pipelines/event_batches.py`) are the only ones that import them, and
tests/pipelines/test_instance_storage.py pins what they rely on, so a Dagster upgrade that changes
them fails there first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import yaml
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Engine, create_engine
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool, QueuePool

from pipelines.event_batches import BatchInserts

OPEN_SHARDS = 8  # the index, and the few runs a process writes or reads at once
# Dagster hands a run's planned events (one per asset and partition: thousands for a batched run)
# to the storage as batches only when this is set; `store_event_batch` below writes a batch in one
# transaction. Every process that opens this storage (CLI, daemon, webserver, run workers) imports
# this module first. A value set by the user is kept.
EVENT_BATCH_SIZE = "1000"
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

# A step's asset events (a materialization or check evaluation per asset and connection: 11 a
# connection) are written behind the step: kept in memory and written as one batch when
# FLUSH_SECONDS pass, FLUSH_EVENTS wait, any other event comes (a step's end, a log line: order
# kept) or anything in this process reads or writes the event log (it reads its own writes).
WRITE_BEHIND = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.ASSET_CHECK_EVALUATION,
    }
)
FLUSH_SECONDS = 0.5
FLUSH_EVENTS = 500


def _pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(BatchInserts, SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log, on kept connections in WAL mode."""

    def __init__(self, base_dir: str | None = None, inst_data: Any = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._temporary: tempfile.TemporaryDirectory | None = None
        self._present: set[str] = set()  # tables and columns known to exist
        self._local = threading.local()  # the open batch of this thread, if any
        self._pending: list[Any] = []  # asset events written behind, in their order
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one batch at a time: batches keep their order
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        if base_dir is None:
            base_dir = (
                os.path.join(os.environ["DAGSTER_HOME"], "storage")
                if os.environ.get("DAGSTER_HOME")
                else self._temporary_dir()
            )
            # Processes handed this instance by reference (`dagster dev` gives one to its
            # webserver and daemon) must open the same folder: the reference names it.
            inst_data = ConfigurableClassData(
                __name__, type(self).__name__, yaml.safe_dump({"base_dir": base_dir})
            )
        super().__init__(base_dir, inst_data=inst_data)

    # Dagster asks the database whether a table or column exists on every event (asset check
    # events ask for their table, materializations for an asset_keys column): a new inspector and,
    # for tables, a new engine each time, 15% of a sync's CPU in the profile. A table or column
    # that exists stays (Dagster's migrations add, never drop), so a yes is remembered; a no is
    # asked again, so a migration run meanwhile is seen.
    def has_table(self, table_name: str) -> bool:
        if table_name in self._present:
            return True
        found = super().has_table(table_name)
        if found:
            self._present.add(table_name)
        return found

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        key = f"asset_keys.{column_name}"
        if key in self._present:
            return True
        found = super()._has_asset_key_col_on_connection(conn, column_name)
        if found:
            self._present.add(key)
        return found

    def _temporary_dir(self) -> str:
        """No DAGSTER_HOME (`dg check defs`, a bare `dagster dev`): Dagster's own answer, a
        temporary instance in the current folder, removed when the instance is disposed."""
        self._temporary = tempfile.TemporaryDirectory(prefix=".tmp_dagster_home_", dir=os.getcwd())
        return os.path.join(self._temporary.name, "storage")

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: Any, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event(self, event: Any) -> None:
        if event.dagster_event_type in WRITE_BEHIND:
            with self._pending_lock:
                self._pending.append(event)
                full = len(self._pending) >= FLUSH_EVENTS
            if self._flusher is None:
                self._start_flusher()
            if full:
                self.flush()
            return
        super().store_event(event)  # its first `_connect` writes what was kept behind first

    def flush(self) -> None:
        """Write the events kept behind, as one batch."""
        with self._flush_lock:
            with self._pending_lock:
                events, self._pending = self._pending, []
            if not events:
                return
            try:
                self._write_batch(events)
            except BaseException:
                with self._pending_lock:  # kept for the next attempt, in order
                    self._pending[:0] = events
                raise

    def _start_flusher(self) -> None:
        with self._pending_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_every, name="dagster-event-flush", daemon=True
            )
        self._flusher.start()
        atexit.register(self._flush_at_exit)

    def _flush_every(self) -> None:
        while not self._stopping.wait(FLUSH_SECONDS):
            with contextlib.suppress(Exception):  # kept; the step's next event writes or raises
                self.flush()

    def _flush_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.flush()

    def store_event_batch(self, events: Sequence[Any]) -> None:
        """Events Dagster hands over as a batch (a run's planned events, with
        DAGSTER_EVENT_BATCH_SIZE set) in one transaction per shard: Dagster's own writes, event by
        event, without a commit and a lock round for each."""
        self.flush()
        self._write_batch(events)

    def _write_batch(self, events: Sequence[Any]) -> None:
        with self._db_lock, contextlib.ExitStack() as stack:
            self._local.batch, self._local.stack = {}, stack
            try:
                self._insert(events)
            finally:
                shards = list(self._local.batch)
                self._local.batch = self._local.stack = None
        for shard in shards:
            if shard != INDEX_SHARD_NAME:
                _touch(self.path_for_shard(shard))

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        batch: dict[str, Connection] | None = getattr(self._local, "batch", None)
        if batch is not None:  # in store_event_batch, which holds the lock and the transactions
            if shard not in batch:
                batch[shard] = self._begin(shard, self._local.stack)
            yield batch[shard]
            return
        if self._pending:
            self.flush()  # this process reads its own writes
        with self._db_lock, contextlib.ExitStack() as stack:
            yield self._begin(shard, stack)
        if shard != INDEX_SHARD_NAME:
            _touch(self.path_for_shard(shard))

    def _begin(self, shard: str, stack: contextlib.ExitStack) -> Connection:
        """A transaction on the shard's kept connection, ended (committed, or rolled back on an
        error) when `stack` closes; the caller holds `_db_lock`."""
        if shard not in self._initialized_dbs:
            # Dagster's schema check opens a second connection: on its own engine.
            init_engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            self._initdb(init_engine)
            init_engine.dispose()
            self._initialized_dbs.add(shard)
        conn = stack.enter_context(self._engine(shard).connect())
        stack.enter_context(conn.begin())
        return conn

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=0,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sqlalchemy_event.listen(engine, "connect", _pragmas)
            self._engines[shard] = engine
            while len(self._engines) > OPEN_SHARDS:
                _name, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    def _close_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_engines()  # its files are about to be deleted
        super().wipe()

    def dispose(self) -> None:
        self._stopping.set()
        self.flush()
        atexit.unregister(self._flush_at_exit)
        self._close_engines()
        super().dispose()
        if self._temporary is not None:
            self._temporary.cleanup()


def _touch(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # a wiped run
        os.utime(path)

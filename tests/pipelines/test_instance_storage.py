"""The instance's SQLite event log on kept connections: same data, WAL files, a live log watch.

Round trips through two storage objects on one folder, as a run worker and the webserver are:
what one writes the other reads, a watch started by one hears the other's writes (the UI's live
run log), and a long-lived process keeps only a few shard files open. The project's dagster.yaml
selects the class; a Dagster upgrade that changes what it builds on fails here.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from pipelines.instance_home import create_instance_storage
from pipelines.instance_storage import (
    EVENT_BATCH_SIZE,
    OPEN_SHARDS,
    PooledSqliteEventLogStorage,
)

REPO = Path(__file__).resolve().parents[2]


def log_entry(run_id: str, message: str) -> dg.EventLogEntry:
    return dg.EventLogEntry(
        error_info=None,
        level="INFO",
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
    )


def materialize_range(
    assets: list, instance: dg.DagsterInstance, keys: list[str]
) -> dg.ExecuteInProcessResult:
    """One run over the partitions keys[0]..keys[-1], as the sync's batches are."""
    return dg.materialize(
        assets,
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
    )


def messages(storage: PooledSqliteEventLogStorage, run_id: str) -> list[str]:
    return [
        record.event_log_entry.user_message
        for record in storage.get_records_for_run(run_id).records
    ]


def test_what_one_process_writes_another_reads_and_the_files_are_in_wal_mode(tmp_path):
    writer = PooledSqliteEventLogStorage(str(tmp_path))
    reader = PooledSqliteEventLogStorage(str(tmp_path))
    for n in range(3):
        writer.store_event(log_entry("run-a", f"event {n}"))

    assert messages(reader, "run-a") == ["event 0", "event 1", "event 2"]
    with sqlite3.connect(tmp_path / "run-a.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.dispose()
    reader.dispose()


def test_a_watch_hears_events_written_by_another_storage_object(tmp_path):
    """The webserver streams a run's log by watching its shard file; WAL must not silence it."""
    webserver = PooledSqliteEventLogStorage(str(tmp_path))
    worker = PooledSqliteEventLogStorage(str(tmp_path))
    worker.store_event(log_entry("run-w", "created"))  # the shard exists before the watch
    heard: list[str] = []
    got_it = threading.Event()

    def callback(entry: dg.EventLogEntry, _cursor: str) -> None:
        heard.append(entry.user_message)
        if entry.user_message == "later":
            got_it.set()

    webserver.watch("run-w", None, callback)
    try:
        worker.store_event(log_entry("run-w", "later"))
        assert got_it.wait(timeout=30), f"the watch heard only {heard}"
    finally:
        webserver.end_watch("run-w", callback)
        webserver.dispose()
        worker.dispose()
    assert "later" in heard


def test_a_long_lived_process_keeps_only_a_few_shards_open(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    for n in range(OPEN_SHARDS + 5):
        storage.store_event(log_entry(f"run-{n}", "x"))

    assert len(storage._engines) <= OPEN_SHARDS
    assert messages(storage, "run-0") == ["x"]  # an evicted shard reopens
    storage.dispose()


def test_schema_questions_remember_a_yes_and_ask_again_after_a_no(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    assert storage.has_table("asset_check_executions")
    assert storage.has_table("asset_check_executions")  # from memory
    assert "asset_check_executions" in storage._present
    assert not storage.has_table("no_such_table")
    assert "no_such_table" not in storage._present
    with storage.index_connection() as conn:
        assert storage._has_asset_key_col_on_connection(conn, "last_materialization_timestamp")
        assert not storage._has_asset_key_col_on_connection(conn, "no_such_column")
    assert storage._present >= {"asset_keys.last_materialization_timestamp"}
    storage.dispose()


def test_wipe_deletes_the_run_shards_it_held_open(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    storage.store_event(log_entry("run-x", "x"))
    storage.wipe()

    assert not (tmp_path / "run-x.db").exists()
    assert messages(storage, "run-x") == []
    storage.dispose()


def test_the_project_instance_uses_it_under_dagster_home(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert Path(instance.event_log_storage._base_dir) == tmp_path / "storage"


def test_without_dagster_home_it_uses_a_temporary_folder_its_reference_names(tmp_path, monkeypatch):
    """`dg check defs` and a bare `dagster dev` have no DAGSTER_HOME: like Dagster, a temporary
    instance; processes given the instance by reference must open the very same folder."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    storage = PooledSqliteEventLogStorage()
    storage.store_event(log_entry("run-t", "x"))
    folder = Path(storage._base_dir)
    assert folder.parent.parent == tmp_path and folder.parent.name.startswith(".tmp_dagster_home_")

    twin = PooledSqliteEventLogStorage.from_config_value(
        storage.inst_data, yaml.safe_load(storage.inst_data.config_yaml)
    )
    assert messages(twin, "run-t") == ["x"]
    twin.dispose()
    storage.dispose()
    assert not folder.exists()


def test_processes_started_together_on_a_prepared_new_home_all_open_it(tmp_path):
    # Four processes opening a new home at once race to create its storage (Dagster stamps the
    # schema version in each: "more than one head present" in some of them, seen here 0-2 times
    # in 4 in five tries). Created first, the home opens in all four.
    home = tmp_path / "new_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    environ = dict(os.environ, DAGSTER_HOME=str(home))
    os.environ["DAGSTER_HOME"] = str(home)
    create_instance_storage()
    probe = "import dagster as dg; dg.DagsterInstance.get().get_runs()"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", probe], cwd=REPO, env=environ, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0] * 4, errors


def test_a_runs_planned_events_are_written_as_one_batch_and_failed_partitions_still_show(
    tmp_path, monkeypatch
):
    """Dagster hands a run's planned events (one per asset and partition) over as a batch, since
    this module sets DAGSTER_EVENT_BATCH_SIZE; the storage writes it in one transaction. What the
    UI reads from them must not change: every partition planned, the failed ones marked failed."""
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == EVENT_BATCH_SIZE
    batches: list[int] = []
    store_batch = PooledSqliteEventLogStorage.store_event_batch

    def counting(self, events):
        batches.append(len(events))
        store_batch(self, events)

    monkeypatch.setattr(PooledSqliteEventLogStorage, "store_event_batch", counting)
    parts = dg.DynamicPartitionsDefinition(name="accounts")
    keys = [f"acct-{n}" for n in range(12)]

    @dg.multi_asset(
        specs=[dg.AssetSpec(name, partitions_def=parts) for name in ("left", "right")],
        partitions_def=parts,
        backfill_policy=dg.BackfillPolicy.multi_run(100),
    )
    def both(context):
        for key in context.partition_keys:
            if key != "acct-3":  # one account fails, as a connection of a batch does
                for asset in ("left", "right"):
                    context.log_event(dg.AssetMaterialization(asset, partition=key))
        raise dg.Failure("acct-3 failed")
        yield  # a generator, as the sync is

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        instance.add_dynamic_partitions("accounts", keys)
        result = materialize_range([both], instance, keys)
        assert not result.success
        assert batches == [len(keys) * 2]  # every planned event of the run, in one batch
        planned = instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        )
        assert len(planned) == len(keys) * 2
        for asset in ("left", "right"):
            status = get_and_update_asset_status_cache_value(instance, dg.AssetKey(asset), parts)
            failed = status.deserialize_failed_partition_subsets(parts).get_partition_keys()
            done = status.deserialize_materialized_partition_subsets(parts).get_partition_keys()
            assert set(failed) == {"acct-3"}, asset
            assert set(done) == set(keys) - {"acct-3"}, asset
            [record] = instance.get_asset_records([dg.AssetKey(asset)])
            assert record.asset_entry.last_run_id == result.run_id


def _first_materialization(home: Path) -> dg.EventLogEntry:
    return next(
        e
        for e in _run_with_checks(home)
        if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    )


def _run_with_checks(home: Path) -> list:
    """Every event of a ranged run of a multi-asset with a check, one partition failing, from an
    instance on Dagster's own SQLite event log (no dagster.yaml)."""
    parts = dg.DynamicPartitionsDefinition(name="accounts")
    keys = [f"acct-{n}" for n in range(6)]

    @dg.multi_asset(
        specs=[dg.AssetSpec(name, partitions_def=parts) for name in ("left", "right")],
        check_specs=[dg.AssetCheckSpec("fresh", asset="left")],
        partitions_def=parts,
        backfill_policy=dg.BackfillPolicy.multi_run(100),
    )
    def both(context):
        for key in context.partition_keys:
            if key == "acct-3":
                continue
            for asset in ("left", "right"):
                context.log_event(dg.AssetMaterialization(asset, partition=key, metadata={"n": 1}))
            context.log_event(
                dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey("left"),
                    check_name="fresh",
                    passed=key != "acct-1",
                    partition=key,
                )
            )
            if key == "acct-1":  # one batch ends here, the next at the step's end
                context.log.info("synced %s", key)
        raise dg.Failure("acct-3 failed")
        yield

    home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("accounts", keys)
        ranged = materialize_range([both], instance, keys)
        # A run of one partition: a batch of the other kind (not ranged).
        single = dg.materialize(
            [both], instance=instance, partition_key="acct-2", raise_on_error=False
        )
        return [
            record.event_log_entry
            for result in (ranged, single)
            for record in instance.get_records_for_run(result.run_id, limit=100_000).records
        ]


# Stamped with the clock when the storage (not an event) writes them: they differ between any two
# storages, whatever they were given.
CLOCK_COLUMNS = {"create_timestamp", "migration_completed"}


def _tables(folder: Path) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for path in sorted(folder.glob("*.db")):
        with sqlite3.connect(path) as db:
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in names:
                columns = [c[1] for c in db.execute(f"PRAGMA table_info({name})")]
                kept = ", ".join(f'"{c}"' for c in columns if c not in CLOCK_COLUMNS)
                found[f"{path.name}:{name}"] = db.execute(f"SELECT {kept} FROM {name}").fetchall()
    return found


def test_asset_events_written_behind_leave_the_same_rows_as_dagsters_event_by_event(tmp_path):
    """A step's materializations and check evaluations are kept and written as batches (one
    statement per shard, each asset's row once per batch): every table of every shard must hold
    what Dagster's own storage writes event by event, ids included."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    events = _run_with_checks(tmp_path / "source")
    kinds = {event.dagster_event_type for event in events if event.is_dagster_event}
    assert {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.STEP_FAILURE,
    } <= kinds
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    pooled = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    for event in events:
        stock.store_event(event)
        pooled.store_event(event)
    stock.dispose()
    pooled.dispose()

    expected, written = _tables(tmp_path / "stock"), _tables(tmp_path / "pooled")
    assert written.keys() == expected.keys()
    for table, rows in expected.items():
        assert written[table] == rows, table
    assert any(rows for table, rows in expected.items() if "asset_check_executions" in table)


def test_asset_events_kept_behind_are_read_back_at_once_here_and_soon_elsewhere(tmp_path):
    writer = PooledSqliteEventLogStorage(str(tmp_path))
    other = PooledSqliteEventLogStorage(str(tmp_path))
    writer.store_event(log_entry("run-b", "first"))
    materialized = _first_materialization(tmp_path / "source")
    event = materialized._replace(run_id="run-b")
    writer.store_event(event)
    assert writer._pending  # kept behind ...
    records = writer.get_records_for_run("run-b").records  # ... yet read back by its writer
    assert [r.event_log_entry.dagster_event_type for r in records][-1] == (
        dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    writer.store_event(event)
    deadline = time.monotonic() + 10
    while len(other.get_records_for_run("run-b").records) < 3:  # the flusher's next round
        assert time.monotonic() < deadline, "never written"
        time.sleep(0.05)
    writer.dispose()
    other.dispose()


def test_a_batch_that_fails_is_kept_and_raised_where_the_next_event_is_written(
    tmp_path, monkeypatch
):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    storage._stopping.set()  # no flusher thread: the failure must surface in this thread
    materialized = _first_materialization(tmp_path / "source")
    storage.store_event(log_entry("run-f", "before"))
    storage.store_event(materialized._replace(run_id="run-f"))
    real = PooledSqliteEventLogStorage._insert

    def failing(self, events):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(PooledSqliteEventLogStorage, "_insert", failing)
    try:
        storage.store_event(log_entry("run-f", "after"))
        raise AssertionError("the failed batch was not raised")
    except sqlite3.OperationalError:
        pass
    monkeypatch.setattr(PooledSqliteEventLogStorage, "_insert", real)
    storage.store_event(log_entry("run-f", "after"))
    kinds = [
        r.event_log_entry.dagster_event_type or r.event_log_entry.user_message
        for r in storage.get_records_for_run("run-f").records
    ]
    assert kinds == ["before", dg.DagsterEventType.ASSET_MATERIALIZATION, "after"]
    storage.dispose()

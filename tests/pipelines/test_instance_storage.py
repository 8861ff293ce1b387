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
        result = dg.materialize(
            [both],
            instance=instance,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
        )
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

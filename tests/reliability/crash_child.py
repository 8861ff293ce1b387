"""The process test_crash_consistency kills: the daily sync of a few connections, with kill points.

    python -m tests.reliability.crash_child --connections a,b [--record FILE]
        [--kill-at N --signal-fd FD]

Runs the real `tiktok_daily_sync` job (TikTok assets, warehouse mapping assets, HubSpot push
assets), one in-process Dagster run per connection as `pipelines.runner` launches them, with the
settings the parent put in the environment (WAREHOUSE_URL, STATE_DATABASE_URL, MAPPINGS_DIR,
HUBSPOT_*, TIKTOK_*). Videos are read in `full` mode, so every stored row is updated and vanished
videos are marked.

Kill points live only here: before running, a few functions of the warehouse loader and of the CRM
push are wrapped so that each call passes through `hook(name)`; nothing in pipelines/ or resources/
knows about it. Every hook call is counted. `--record` writes the names in order (the parent
picks kill points from a clean run's list); at call number `--kill-at`, the child writes
"N name" to the inherited pipe `--signal-fd` and blocks until the parent SIGKILLs it.

The loader's chunk sizes are lowered (module constants), so a few hundred videos cross many chunk
boundaries: the code paths are the production ones, with more places to die in.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

VIDEO_CHUNK = 100  # production: 1,000 videos per upsert pair
LOADER_CHUNK = 128  # production: 1,000 rows per executemany, 10,000 per COPY
RUN_CONFIG = {
    "ops": {"connection_sync": {"config": {"mode": "full"}}},
    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
}


class Hooks:
    """Counts hook calls; records their names, or stops the process at one of them."""

    def __init__(self, kill_at: int | None, signal_fd: int | None) -> None:
        self.kill_at, self.signal_fd = kill_at, signal_fd
        self.names: list[str] = []

    def __call__(self, name: str) -> None:
        self.names.append(name)
        if len(self.names) == self.kill_at and self.signal_fd is not None:
            os.write(self.signal_fd, f"{len(self.names)} {name}\n".encode())
            while True:  # the parent sends SIGKILL now
                time.sleep(60)


def install(hook: Hooks) -> None:
    """Wrap the loader and the push at the places a crash would hurt; shrink the chunk sizes."""
    from resources.crm.http import CrmHttp
    from resources.crm.state import PushStateStore
    from resources.warehouse import load as warehouse_load
    from resources.warehouse import store as warehouse
    from resources.warehouse.tiktok_videos import VideoWrite
    from services import videos as video_sync

    video_sync.CHUNK_VIDEOS = VIDEO_CHUNK
    warehouse_load.CHUNK_ROWS = warehouse_load.COPY_CHUNK_ROWS = LOADER_CHUNK

    transaction = warehouse.Warehouse.transaction

    @contextmanager
    def hooked_transaction(self: warehouse.Warehouse) -> Iterator[Any]:
        with transaction(self) as db:
            yield db
            hook("wh:before_commit")
        hook("wh:after_commit")

    upsert = warehouse.Warehouse.upsert

    def hooked_upsert(self: warehouse.Warehouse, db: Any, table: Any, *args: Any, **kw: Any) -> int:
        hook(f"wh:upsert_start:{table.name}")
        return upsert(self, db, table, *args, **kw)

    chunks = warehouse_load.Batch.chunks

    def hooked_chunks(self: Any, *args: Any, **kw: Any) -> Iterator[Any]:
        for index, chunk in enumerate(chunks(self, *args, **kw)):
            if index:
                hook(f"wh:between_chunks:{self.table.name}")
            yield chunk

    copy = warehouse_load.PostgresCopy._copy

    def hooked_copy(self: Any, cur: Any, table: str, *args: Any, **kw: Any) -> None:
        copy(self, cur, table, *args, **kw)
        # Into the staging table: the UPDATE that merges it has not run yet.
        hook("wh:pg_staged_before_update" if table == self.stage else "wh:pg_copied")

    mark = VideoWrite.mark_unlisted_deleted

    def hooked_mark(self: VideoWrite) -> int:
        hook("wh:before_mark_deleted")
        return mark(self)

    save = PushStateStore.save

    def hooked_save(self: PushStateStore, *args: Any, **kw: Any) -> Any:
        hook("crm:accepted_before_state_saved")  # the CRM took the batch; no hash recorded yet
        kept = save(self, *args, **kw)
        hook("crm:state_saved")
        return kept

    send = CrmHttp.send

    def hooked_send(self: CrmHttp, *args: Any, **kw: Any) -> Any:
        hook("crm:before_request")
        response = send(self, *args, **kw)
        hook("crm:response_received")
        return response

    warehouse.Warehouse.transaction = hooked_transaction  # type: ignore[method-assign]
    warehouse.Warehouse.upsert = hooked_upsert  # type: ignore[method-assign]
    warehouse_load.Batch.chunks = hooked_chunks  # type: ignore[method-assign]
    warehouse_load.PostgresCopy._copy = hooked_copy  # type: ignore[method-assign]
    VideoWrite.mark_unlisted_deleted = hooked_mark  # type: ignore[method-assign]
    PushStateStore.save = hooked_save  # type: ignore[method-assign]
    CrmHttp.send = hooked_send  # type: ignore[method-assign]


def sync(connections: list[str]) -> dict[str, str]:
    """The daily sync job, one run per connection; returns failure descriptions by connection."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
    from pipelines.runner import _failure_text, add_partitions

    # One connection at a time: the hooks' order (and so each kill point) is then the same in
    # the recording run and every killed run.
    os.environ["SYNC_WORKERS"] = "1"
    job = defs().resolve_job_def(DAILY_SYNC_JOB)
    failed = {}
    with dg.DagsterInstance.ephemeral() as instance:
        add_partitions(instance, connections)
        for name in connections:
            result = job.execute_in_process(
                instance=instance, partition_key=name, raise_on_error=False, run_config=RUN_CONFIG
            )
            if not result.success:
                failed[name] = _failure_text(result)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", required=True)
    parser.add_argument("--record")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--signal-fd", type=int)
    args = parser.parse_args()
    hook = Hooks(args.kill_at, args.signal_fd)
    install(hook)
    failed = sync(args.connections.split(","))
    if args.record:
        with open(args.record, "w", encoding="utf-8") as out:
            out.write("".join(f"{name}\n" for name in hook.names))
    for name, reason in failed.items():
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

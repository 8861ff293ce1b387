"""Dagster's `store_event` for many events at once: the batch writer of the instance's event log.

Mixed into `pipelines.instance_storage.PooledSqliteEventLogStorage`, inside one transaction per
shard that it opens: each shard's event rows in one statement (the index's ids returned in
order), the asset event tags in one, each asset's row once per event type (its last event: the
same end state as event by event), and a run's check evaluations in one insert when no row
exists for them yet (Dagster's own method otherwise). tests/pipelines/test_instance_storage.py
replays real runs into Dagster's storage and into this one and compares every table.

Like instance_storage.py, this module builds on Dagster's private storage modules; a Dagster
upgrade that changes them fails that test first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    DagsterEventType,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from sqlalchemy import select

# What Dagster's SQLite storage mirrors into the index shard besides the run's own shard.
MIRRORED = ASSET_EVENTS | ASSET_CHECK_EVENTS | set(EVENT_TYPE_TO_PIPELINE_RUN_STATUS)


class BatchInserts:
    """The batch writer; the storage it is mixed into holds the transactions (`_connect`)."""

    def _insert(self, events: Sequence[Any]) -> None:
        """What Dagster's `store_event` writes for each event, for many at once: each shard's
        rows in one statement, and each asset's row once per event type (its last event), the
        same end state as event by event."""
        rows = [self._event_to_row(event) for event in events]
        runs: dict[str, list[dict]] = {}
        for event, row in zip(events, rows, strict=True):
            runs.setdefault(event.run_id, []).append(row)
        for run_id, run_rows in runs.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), run_rows)
        mirrored = [
            (event, row)
            for event, row in zip(events, rows, strict=True)
            if event.dagster_event_type in MIRRORED
        ]
        if not mirrored:
            return
        table = SqlEventLogStorageTable
        with self.index_connection() as conn:
            ids = (
                conn.execute(
                    table.insert().returning(table.c.id, sort_by_parameter_order=True),
                    [row for _event, row in mirrored],
                )
                .scalars()
                .all()
            )
            assets = [
                (event, event_id)
                for (event, _row), event_id in zip(mirrored, ids, strict=True)
                if event.dagster_event_type in ASSET_EVENTS
            ]
            if assets:
                self._store_asset_event_tags(conn, *zip(*assets, strict=True))
            last: dict[tuple, int] = {}
            for position, (event, _event_id) in enumerate(assets):
                last[(event.dagster_event.asset_key, event.dagster_event_type)] = position
            for position in sorted(last.values()):
                self._store_asset_event(conn, *assets[position])
        checks = [
            (event, row, event_id)
            for (event, row), event_id in zip(mirrored, ids, strict=True)
            if event.dagster_event_type in ASSET_CHECK_EVENTS
        ]
        evaluations = [c for c in checks if _in_a_run(c[0])]
        for event, _row, event_id in checks:
            if not _in_a_run(event):  # planned checks, evaluations outside a run: Dagster's way
                self.store_asset_check_event(event, event_id)
        if evaluations:
            self._insert_check_evaluations(evaluations)

    def _insert_check_evaluations(self, evaluations: list[tuple[Any, dict, int]]) -> None:
        """What Dagster's `_update_asset_check_evaluation` writes for each evaluation, for many at
        once. A check planned on the whole run (how a partitioned run plans its checks) has no
        row for the evaluation's partition, so Dagster inserts one: here one statement inserts
        them all, each event serialized once. A batch where a row exists already (a check
        planned on that very partition) or that names one execution twice is left to Dagster's
        own method, event by event."""
        table = AssetCheckExecutionsTable
        rows = [self._check_row(event, row, event_id) for event, row, event_id in evaluations]
        keys = [tuple(r[k] for k in _CHECK_KEY) for r in rows]
        with self.index_connection() as conn:
            existing = conn.execute(
                select(table.c.asset_key, table.c.check_name, table.c.run_id, table.c.partition)
                .where(table.c.run_id.in_({r["run_id"] for r in rows}))
                .where(table.c.partition.in_({r["partition"] for r in rows}))
            ).all()
            if len(set(keys)) == len(keys) and not set(keys) & {tuple(e) for e in existing}:
                conn.execute(table.insert(), rows)
                return
        for event, _row, event_id in evaluations:
            self.store_asset_check_event(event, event_id)

    def _check_row(self, event: Any, row: dict, event_id: int) -> dict[str, Any]:
        evaluation = event.dagster_event.event_specific_data
        target = evaluation.target_materialization_data
        return {
            "asset_key": evaluation.asset_key.to_string(),
            "check_name": evaluation.check_name,
            "run_id": event.run_id,
            "partition": evaluation.partition,
            "execution_status": (
                AssetCheckExecutionRecordStatus.SUCCEEDED.value
                if evaluation.passed
                else AssetCheckExecutionRecordStatus.FAILED.value
            ),
            "evaluation_event": row["event"],
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
            "materialization_event_storage_id": target.storage_id if target else None,
        }


_CHECK_KEY = ("asset_key", "check_name", "run_id", "partition")


def _in_a_run(event: Any) -> bool:
    """An evaluation of a check in a run, on a partition: the rows `_insert_check_evaluations`
    writes in one statement."""
    return (
        event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and bool(event.run_id)
        and event.dagster_event.event_specific_data.partition is not None
    )

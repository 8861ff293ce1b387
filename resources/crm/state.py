"""Push state in the state database: what was pushed (content hashes) and what was refused.

`crm_push_state` holds one row per (mapping, record key): the hash of the content last pushed,
the CRM's id and when. A record is marked pushed only once the CRM took it, so a record refused
as transient or auth, or never sent because a push stopped, is sent again by the next run.
`crm_rejections` keeps every refused record with its reason, class and content, until it is
pushed: a validation rejection is held back until its content changes (or a forced push).
Tables are created idempotently; each batch is saved in one transaction as soon as it is back.

A record refused as transient is not retried forever: once it has been refused
`MAX_TRANSIENT_ATTEMPTS` times it becomes a validation rejection ("gave up after N attempts: ..."),
held until its content changes. Records a stopped push never sent do not count as attempts.
An archived record keeps its row with the content hash `archived`, and each archive also writes
one `crm_archived` row to the connection audit trail, in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, select

from resources.connections import audit
from resources.crm.models import TRANSIENT, VALIDATION, Archive, BatchResult, Record, Rejection
from resources.crm.state_tables import (
    as_json,
    chunks,
    push_state,
    rejections,
    upsert,
)
from resources.database import STATE_METADATA, create_tables

ARCHIVED_HASH = "archived"  # content hash of a record archived in the CRM
MAX_TRANSIENT_ATTEMPTS = 5
ARCHIVED_EVENT = "crm_archived"  # audit event, one per archived record
ARCHIVE_COMMAND = "crm push"


@dataclass(frozen=True)
class Target:
    """Whose state a push reads and writes: the mapping, its CRM object and the connection."""

    mapping: str
    kind: str
    object: str
    connection: str


@dataclass(frozen=True)
class StoredRejection:
    mapping: str
    record_key: str
    connection_name: str
    error_class: str
    reason: str
    attempts: int
    record: dict[str, Any]


class PushStateStore:
    def __init__(
        self,
        engine: Engine,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_transient_attempts: int = MAX_TRANSIENT_ATTEMPTS,
    ) -> None:
        self.engine = engine
        self._now = now
        self.max_transient_attempts = max_transient_attempts
        create_tables(STATE_METADATA, engine, [push_state, rejections, audit.audit_table])

    def crm_ids(self, mapping: str, keys: Iterable[str]) -> dict[str, str]:
        """The CRM's own id of each pushed record that has one."""
        found: dict[str, str] = {}
        with self.engine.connect() as db:
            for chunk in chunks(keys):
                query = select(push_state.c.record_key, push_state.c.crm_id).where(
                    push_state.c.mapping == mapping,
                    push_state.c.record_key.in_(chunk),
                    push_state.c.crm_id.is_not(None),
                )
                found.update((row.record_key, row.crm_id) for row in db.execute(query))
        return found

    def pushed_keys(self, mapping: str, connection: str) -> dict[str, str]:
        """key -> hash of every record this connection last pushed through `mapping`."""
        query = select(push_state.c.record_key, push_state.c.content_hash).where(
            push_state.c.mapping == mapping, push_state.c.connection_name == connection
        )
        with self.engine.connect() as db:
            return {row.record_key: row.content_hash for row in db.execute(query)}

    def mark_archived(
        self, target: Target, keys: Iterable[str], archives: Iterable[Archive]
    ) -> None:
        """Record archives in the push state and the audit trail, in one transaction."""
        done = set(keys)
        chosen = [a for a in archives if a.key in done]
        if not chosen:
            return
        now = self._now()
        rows = [
            {
                "mapping": target.mapping,
                "record_key": a.key,
                "target_kind": target.kind,
                "target_object": target.object,
                "connection_name": target.connection,
                "content_hash": ARCHIVED_HASH,
                "crm_id": a.crm_id,
                "pushed_at": now,
            }
            for a in chosen
        ]
        events = [
            {
                "connection_name": target.connection,
                "event": ARCHIVED_EVENT,
                "detail": f"{target.mapping}: {target.kind} {target.object} {a.key} "
                f"(crm id {a.crm_id or 'unknown'}) archived: {a.reason}",
                "warehouse_table": None,
                "rows_removed": None,
                "command": ARCHIVE_COMMAND,
                "at": now.timestamp(),
            }
            for a in chosen
        ]
        with self.engine.begin() as db:
            upsert(db, push_state, rows, ["content_hash", "crm_id", "pushed_at", "connection_name"])
            for chunk in chunks(a.key for a in chosen):
                db.execute(
                    delete(rejections).where(
                        rejections.c.mapping == target.mapping, rejections.c.record_key.in_(chunk)
                    )
                )
            db.execute(audit.audit_table.insert(), events)

    def pushed_hashes(self, mapping: str, keys: Iterable[str]) -> dict[str, str]:
        return self._hashes(push_state, mapping, keys)

    def held_rejections(self, mapping: str, keys: Iterable[str]) -> dict[str, str]:
        """Hashes of validation rejections: the content the CRM refused, not to be resent."""
        return self._hashes(rejections, mapping, keys, rejections.c.error_class == VALIDATION)

    def _hashes(self, table: Table, mapping: str, keys: Iterable[str], *where: Any) -> dict:
        found: dict[str, str] = {}
        with self.engine.connect() as db:
            for chunk in chunks(keys):
                query = select(table.c.record_key, table.c.content_hash).where(
                    table.c.mapping == mapping, table.c.record_key.in_(chunk), *where
                )
                found.update((row.record_key, row.content_hash) for row in db.execute(query))
        return found

    def save(
        self,
        target: Target,
        result: BatchResult,
        hashes: Mapping[str, str],
        records: Mapping[str, Record],
    ) -> list[Rejection]:
        """Mark pushed records (and forget their rejections); keep refused ones with the reason.

        Returns the rejections as kept: a transient one at its last attempt comes back as the
        validation rejection it became.
        """
        now = self._now()
        with self.engine.begin() as db:
            pushed = [
                {
                    "mapping": target.mapping,
                    "record_key": key,
                    "target_kind": target.kind,
                    "target_object": target.object,
                    "connection_name": target.connection,
                    "content_hash": hashes[key],
                    "crm_id": result.crm_ids.get(key),
                    "pushed_at": now,
                }
                for key in result.pushed
            ]
            if pushed:
                upsert(
                    db,
                    push_state,
                    pushed,
                    ["content_hash", "crm_id", "pushed_at", "connection_name", "target_object"],
                )
                for chunk in chunks(result.pushed):
                    db.execute(
                        delete(rejections).where(
                            rejections.c.mapping == target.mapping,
                            rejections.c.record_key.in_(chunk),
                        )
                    )
            return self._reject(db, target, result.rejected, hashes, records, now)

    def reject(
        self,
        target: Target,
        refused: Iterable[Rejection],
        hashes: Mapping[str, str],
        records: Mapping[str, Record],
        *,
        count_attempt: bool = True,
    ) -> list[Rejection]:
        """Keep refused records; `count_attempt=False` for records that were never sent."""
        with self.engine.begin() as db:
            return self._reject(db, target, refused, hashes, records, self._now(), count_attempt)

    def _reject(
        self,
        db: Connection,
        target: Target,
        refused: Iterable[Rejection],
        hashes: Mapping[str, str],
        records: Mapping[str, Record],
        now: datetime,
        count_attempt: bool = True,
    ) -> list[Rejection]:
        refused = list(refused)
        if count_attempt:
            refused = self._give_up(db, target, refused)
        rows = [
            {
                "mapping": target.mapping,
                "record_key": rejection.key,
                "target_kind": target.kind,
                "target_object": target.object,
                "connection_name": target.connection,
                "error_class": rejection.error_class,
                "reason": rejection.reason,
                "content_hash": hashes.get(rejection.key, ""),
                "record": as_json(records.get(rejection.key, {})),
                "attempts": 1 if count_attempt else 0,
                "first_rejected_at": now,
                "last_rejected_at": now,
            }
            for rejection in refused
        ]
        if rows:
            changing = [
                "connection_name",
                "error_class",
                "reason",
                "content_hash",
                "record",
                "last_rejected_at",
                "target_object",
            ]
            upsert(db, rejections, rows, changing, increment="attempts" if count_attempt else None)
        return refused

    def _give_up(self, db: Connection, target: Target, refused: list[Rejection]) -> list[Rejection]:
        """Transient rejections at their last attempt become validation ones, held back."""
        transient = [r.key for r in refused if r.error_class == TRANSIENT]
        if not transient:
            return refused
        attempts: dict[str, int] = {}
        for chunk in chunks(transient):
            query = select(rejections.c.record_key, rejections.c.attempts).where(
                rejections.c.mapping == target.mapping, rejections.c.record_key.in_(chunk)
            )
            attempts.update((row.record_key, row.attempts) for row in db.execute(query))
        limit = self.max_transient_attempts
        return [
            Rejection(
                r.key,
                f"gave up after {limit} attempts (push again with force_full_push, or change "
                f"the record, to retry): {r.reason}",
                VALIDATION,
            )
            if r.error_class == TRANSIENT and attempts.get(r.key, 0) + 1 >= limit
            else r
            for r in refused
        ]

    def rejections(
        self, mapping: str | None = None, connection: str | None = None
    ) -> list[StoredRejection]:
        query = select(rejections).order_by(rejections.c.mapping, rejections.c.record_key)
        if mapping is not None:
            query = query.where(rejections.c.mapping == mapping)
        if connection is not None:
            query = query.where(rejections.c.connection_name == connection)
        with self.engine.connect() as db:
            return [
                StoredRejection(
                    mapping=row.mapping,
                    record_key=row.record_key,
                    connection_name=row.connection_name,
                    error_class=row.error_class,
                    reason=row.reason,
                    attempts=row.attempts,
                    record=json.loads(row.record),
                )
                for row in db.execute(query)
            ]

    def pushed_count(self, mapping: str) -> int:
        query = select(func.count()).where(push_state.c.mapping == mapping)
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())

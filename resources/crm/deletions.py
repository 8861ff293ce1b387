"""Deletions mirrored to a CRM, opt-in per mapping with `on_delete: keep | flag | archive`.

A source record is *deleted* when its row has `deleted_at` set (a video TikTok no longer shows),
and *gone* when its connection was purged (`connections disconnect --purge`: the warehouse rows
are removed and the audit trail's last event for the connection is `purged`). Then:

- keep (the default): nothing changes in the CRM; deleted rows are pushed like any other.
- flag: deleted rows are pushed, carrying the field mapped from `deleted_at`; a purged
  connection's records are upserted with only their key and that field, set to the purge time.
- archive: the CRM record is archived (HubSpot batch archive, Salesforce delete) instead.

The push state remembers an archive as the content hash `archived`, so it happens once; a video
that comes back is pushed again as a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from resources.connections import audit
from resources.crm.models import KEEP, ON_DELETE_MODES, Record

# Lifecycle events of a connection; the purge rows per warehouse table are left out.
_LIFECYCLE = frozenset(
    {audit.CONNECTED, audit.RECONNECTED, audit.IMPORTED, audit.DISCONNECTED, audit.DEAUTHORIZED}
)


@dataclass(frozen=True)
class DeletePolicy:
    """What a push does with deleted records: `mode`, and the field that flags them."""

    mode: str = KEEP
    flag_field: str | None = None
    flag_type: str = "datetime"  # the flag field's mapped type: how the purge time is written


def as_policy(on_delete: DeletePolicy | str) -> DeletePolicy:
    if isinstance(on_delete, DeletePolicy):
        return on_delete
    if on_delete not in ON_DELETE_MODES:
        raise ValueError(
            f"on_delete must be one of {', '.join(ON_DELETE_MODES)}, not {on_delete!r}"
        )
    return DeletePolicy(on_delete)


def purged_at(engine: Engine, connection: str) -> datetime | None:
    """When the connection was purged, if that is the last thing that happened to it."""
    events = [e for e in audit.AuditLog(engine).events(connection) if _is_lifecycle(e)]
    if not events or events[-1].event != audit.PURGED:
        return None
    return datetime.fromtimestamp(events[-1].at, UTC)


def _is_lifecycle(event: audit.AuditEvent) -> bool:
    if event.event == audit.PURGED:
        return event.warehouse_table is None
    return event.event in _LIFECYCLE


def flag_value(policy: DeletePolicy, when: datetime) -> Any:
    if policy.flag_type == "string":
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.date() if policy.flag_type == "date" else when


def flag_records(
    policy: DeletePolicy, key: str, keys: Iterable[str], when: datetime
) -> list[Record]:
    """Upserts that mark a purged connection's records: the key and the flag field only."""
    assert policy.flag_field is not None
    value = flag_value(policy, when)
    return [{key: record_key, policy.flag_field: value} for record_key in keys]

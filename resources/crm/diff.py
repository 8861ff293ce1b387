"""Which mapped records need pushing: a pure comparison of content hashes.

A record's hash is the sha256 of its canonical JSON (sorted keys, no spaces, ISO dates) without
the `volatile` fields: values such as a last-synced timestamp change on every run and would
otherwise make every record look changed. Such fields still go to the CRM with the record whenever
its content changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from resources.crm.models import Archive, Record


def _default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__} value")


def content_hash(record: Record, volatile: Collection[str] = ()) -> str:
    content = {name: value for name, value in record.items() if name not in volatile}
    text = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PushPlan:
    """Records to send (never pushed, or changed) and what is left alone this run."""

    creates: tuple[Record, ...]  # never pushed by this pipeline (the CRM may still know them)
    updates: tuple[Record, ...]  # pushed before with other content
    unchanged: int
    held: int  # refused for their content before, content unchanged: not sent again
    hashes: Mapping[str, str]  # record key -> content hash, for every planned record
    archives: tuple[Archive, ...] = ()  # CRM records to archive (mapping's on_delete: archive)
    flagged: int = 0  # of the updates: a purged connection's records marked deleted

    @property
    def to_send(self) -> tuple[Record, ...]:
        return self.creates + self.updates


def plan_push(
    records: Sequence[Record],
    key: str,
    pushed: Mapping[str, str],
    held: Mapping[str, str],
    *,
    volatile: Collection[str] = (),
    force: bool = False,
) -> PushPlan:
    """`pushed`: key -> hash last pushed; `held`: key -> hash of a kept validation rejection."""
    creates: list[Record] = []
    updates: list[Record] = []
    hashes: dict[str, str] = {}
    unchanged = held_count = 0
    for record in records:
        record_key = str(record[key])
        digest = hashes[record_key] = content_hash(record, volatile)
        if not force and pushed.get(record_key) == digest:
            unchanged += 1
        elif not force and held.get(record_key) == digest:
            held_count += 1
        elif record_key in pushed:
            updates.append(record)
        else:
            creates.append(record)
    return PushPlan(tuple(creates), tuple(updates), unchanged, held_count, hashes)

"""One diff-based push: plan from the push state, send the changes, save every batch's outcome.

Unchanged records cost no call. A push that stops (daily limit, API allocation, refused token,
a CRM that keeps failing) keeps what it already sent and records the rest as rejections of the
stop's class, so the next run sends exactly those; the report says why it stopped.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from resources.crm.diff import PushPlan, plan_push
from resources.crm.errors import CrmError
from resources.crm.http import CrmHttp
from resources.crm.models import BatchResult, Record, Rejection
from resources.crm.state import PushStateStore, Target


class CrmClient(Protocol):
    """What every preset offers: upsert batches of records by their external id `key`."""

    service: str
    batch_size: int
    http: CrmHttp

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PushReport:
    created: int
    updated: int
    unchanged: int
    held: int  # validation rejections whose content did not change: not sent again
    rejected: tuple[Rejection, ...]  # refused this run, including records a stop left unsent
    not_sent: int
    stopped: CrmError | None = None


def plan_for(
    store: PushStateStore,
    mapping: str,
    records: Sequence[Record],
    key: str,
    *,
    volatile: Collection[str] = (),
    force: bool = False,
) -> PushPlan:
    keys = [str(record[key]) for record in records]
    return plan_push(
        records,
        key,
        store.pushed_hashes(mapping, keys),
        store.held_rejections(mapping, keys),
        volatile=volatile,
        force=force,
    )


def run_push(
    client: CrmClient, store: PushStateStore, target: Target, plan: PushPlan, key: str
) -> PushReport:
    to_send = {str(record[key]): record for record in plan.to_send}
    never_pushed = {str(record[key]) for record in plan.creates}
    created = updated = 0
    rejected: list[Rejection] = []
    answered: set[str] = set()
    try:
        for result in client.push_batches(list(to_send.values()), key):
            store.save(target, result, plan.hashes, to_send)
            created += len(result.created) + sum(k in never_pushed for k in result.accepted)
            updated += len(result.updated) + sum(k not in never_pushed for k in result.accepted)
            rejected += result.rejected
            answered.update(result.pushed, (r.key for r in result.rejected))
    except CrmError as err:
        unsent = [k for k in to_send if k not in answered]
        reason = f"not sent: the push stopped ({err.message})"
        refusals = [Rejection(k, reason, err.rejection_class) for k in unsent]
        store.reject(target, refusals, plan.hashes, to_send)
        return PushReport(
            created, updated, plan.unchanged, plan.held, (*rejected, *refusals), len(unsent), err
        )
    return PushReport(created, updated, plan.unchanged, plan.held, tuple(rejected), 0)

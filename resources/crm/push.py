"""One diff-based push: plan from the push state, send the changes, save every batch's outcome.

Unchanged records cost no call. A push that stops (daily limit, API allocation, refused token,
a CRM that keeps failing) keeps what it already sent and records the rest as rejections of the
stop's class, so the next run sends exactly those; the report says why it stopped.

Deleted records follow the mapping's `on_delete` (see `deletions`): `plan_for` puts the CRM
records to archive in the plan (a dry run shows them), and `run_push` archives them after the
upserts, recording each archive in the push state and the audit trail.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from resources.crm.client import CrmClient
from resources.crm.deletions import DeletePolicy, as_policy, flag_records
from resources.crm.deletions import purged_at as connection_purged_at
from resources.crm.diff import PushPlan, content_hash, plan_push
from resources.crm.errors import CrmError
from resources.crm.models import ARCHIVE, FLAG, KEEP, VALIDATION, Archive, Record, Rejection
from resources.crm.presets import can_archive
from resources.crm.state import ARCHIVED_HASH, PushStateStore, Target

DELETED_REASON = "the source record was deleted (deleted_at set)"
PURGED_REASON = "its connection was purged"


@dataclass(frozen=True)
class PushReport:
    created: int
    updated: int
    unchanged: int
    held: int  # validation rejections whose content did not change: not sent again
    rejected: tuple[Rejection, ...]  # refused this run, including records a stop left unsent
    not_sent: int
    stopped: CrmError | None = None
    archived: int = 0  # CRM records archived this run (on_delete: archive)


def plan_for(
    store: PushStateStore,
    mapping: str,
    records: Sequence[Record],
    key: str,
    *,
    volatile: Collection[str] = (),
    force: bool = False,
    on_delete: DeletePolicy | str = KEEP,
    deleted: Sequence[Record] = (),
    connection: str | None = None,
) -> PushPlan:
    """What to send: `records` are the live mapped records, `deleted` those of deleted rows.

    With `on_delete` keep or flag, deleted records are pushed like the others. With archive, a
    deleted record that was pushed is archived once. Given `connection`, a connection whose
    last audit event is a purge has its previously pushed records archived (archive) or marked
    (flag); with keep, or without `connection`, purges change nothing in the CRM.
    """
    policy = as_policy(on_delete)
    if policy.mode != ARCHIVE:
        records, deleted = [*records, *deleted], []
    keys = [str(record[key]) for record in (*records, *deleted)]
    pushed = store.pushed_hashes(mapping, keys)
    held = store.held_rejections(mapping, keys)
    plan = plan_push(records, key, pushed, held, volatile=volatile, force=force)
    if policy.mode == KEEP:
        return plan
    planned = set(keys)
    purged = connection_purged_at(store.engine, connection) if connection else None
    gone: list[str] = []
    previous: dict[str, str] = {}
    if purged is not None:
        previous = store.pushed_keys(mapping, connection or "")
        gone = sorted(k for k, h in previous.items() if k not in planned and h != ARCHIVED_HASH)
    held |= store.held_rejections(mapping, gone)
    if policy.mode == FLAG:
        # Flagged before (the push state holds the flag record's hash), or refused: not again.
        done = {k: h for k, h in previous.items() if k in gone} if purged else {}
        return _with_flags(plan, policy, key, gone, purged, held | done)
    candidates = [(str(record[key]), DELETED_REASON) for record in deleted]
    candidates += [(k, PURGED_REASON) for k in gone]
    # Once per record: not if never pushed, already archived, or its archive was refused.
    archives = [
        (k, reason)
        for k, reason in candidates
        if (k in gone or pushed.get(k) not in (None, ARCHIVED_HASH))
        and held.get(k) != ARCHIVED_HASH
    ]
    crm_ids = store.crm_ids(mapping, [k for k, _reason in archives])
    chosen = tuple(Archive(k, crm_ids.get(k), reason) for k, reason in archives)
    untouched = len(deleted) - sum(1 for a in chosen if a.reason == DELETED_REASON)
    return replace(plan, archives=chosen, unchanged=plan.unchanged + untouched)


def _with_flags(
    plan: PushPlan,
    policy: DeletePolicy,
    key: str,
    gone: list[str],
    purged: datetime | None,
    skip: dict[str, str],
) -> PushPlan:
    """A purged connection's records, marked by an upsert of their flag field; `skip`: key ->
    a hash that, when it is the flag record's, means the mark is already there (or refused)."""
    if not gone or policy.flag_field is None or purged is None:
        return plan
    flags = flag_records(policy, key, gone, purged)
    hashes = {str(record[key]): content_hash(record) for record in flags}
    fresh = [record for record in flags if skip.get(str(record[key])) != hashes[str(record[key])]]
    return replace(
        plan,
        updates=plan.updates + tuple(fresh),
        hashes={**plan.hashes, **hashes},
        flagged=len(fresh),
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
            kept = store.save(target, result, plan.hashes, to_send)
            created += len(result.created) + sum(k in never_pushed for k in result.accepted)
            updated += len(result.updated) + sum(k not in never_pushed for k in result.accepted)
            rejected += kept
            answered.update(result.pushed, (r.key for r in result.rejected))
    except CrmError as err:
        unsent = [k for k in to_send if k not in answered]
        reason = f"not sent: the push stopped ({err.message})"
        refusals = [Rejection(k, reason, err.rejection_class) for k in unsent]
        store.reject(target, refusals, plan.hashes, to_send, count_attempt=False)
        # Archives wait for a run whose upserts went through: they are planned again.
        return PushReport(
            created, updated, plan.unchanged, plan.held, (*rejected, *refusals), len(unsent), err
        )
    archived, refused, not_archived, stopped = _archive(client, store, target, plan, key)
    return PushReport(
        created,
        updated,
        plan.unchanged,
        plan.held,
        (*rejected, *refused),
        not_archived,
        stopped,
        archived,
    )


def _archive(
    client: CrmClient, store: PushStateStore, target: Target, plan: PushPlan, key: str
) -> tuple[int, list[Rejection], int, CrmError | None]:
    """Archived, refused, not sent (a stop), and the stop; refusals keep the hash `archived`."""
    if not plan.archives:
        return 0, [], 0, None
    details = {a.key: {key: a.key, "crm_id": a.crm_id, "archive": a.reason} for a in plan.archives}
    hashes = dict.fromkeys(details, ARCHIVED_HASH)
    if not can_archive(client):
        refused = [
            Rejection(a.key, f"{client.service} targets cannot archive records", VALIDATION)
            for a in plan.archives
        ]
        store.reject(target, refused, hashes, details)
        return 0, refused, 0, None
    archived, refused, answered = 0, [], set()
    try:
        for result in client.archive_batches(plan.archives, key):
            store.mark_archived(target, result.archived, plan.archives)
            archived += len(result.archived)
            refused += store.reject(target, result.rejected, hashes, details)
            answered.update(result.archived, (r.key for r in result.rejected))
    except CrmError as err:
        reason = f"not archived: the push stopped ({err.message})"
        unsent = [Rejection(a.key, reason, err.rejection_class) for a in plan.archives]
        unsent = [r for r in unsent if r.key not in answered]
        store.reject(target, unsent, hashes, details, count_attempt=False)
        return archived, [*refused, *unsent], len(unsent), err
    return archived, refused, 0, None

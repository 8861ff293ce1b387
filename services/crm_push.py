"""One connection's push to a CRM: map its rows, diff against the push state, send the changes.

Each push maps the connection's extracted rows (as the warehouse mappings do), compares content
hashes with the push state and upserts only new or changed records by external id, so a rerun
sends nothing and never duplicates a record. See docs/crm.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping as EnvMapping

from resources.crm.diff import content_hash
from resources.crm.models import VALIDATION, Rejection
from resources.crm.push import plan_for, run_push
from resources.crm.state import Target
from services.crm_mapping import delete_policy, split_deleted, volatile_fields
from services.crm_records import source_records, source_rows
from services.outcome import ConnectionOutcome, PushOutcome
from services.plan import SyncPlan, SyncTools
from transforms import Mapping, MappingResult, apply_mapping

MAX_REJECT_RATE_VARIABLE = "CRM_MAX_REJECT_RATE"
DEFAULT_MAX_REJECT_RATE = 0.05


class RejectRateSettingError(ValueError):
    pass


def max_reject_rate(environ: EnvMapping[str, str] = os.environ) -> float:
    raw = environ.get(MAX_REJECT_RATE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_REJECT_RATE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise RejectRateSettingError(
            f"{MAX_REJECT_RATE_VARIABLE} must be a fraction from 0 to 1 (0.05 means 5%), "
            f"not {raw!r}"
        )
    return value


class PushStopped(RuntimeError):
    """The CRM stopped the push (daily limit, refused token...); what was sent is saved."""

    def __init__(self, outcome: PushOutcome) -> None:
        assert outcome.report is not None and outcome.report.stopped is not None
        super().__init__(outcome.report.stopped.message)
        self.outcome = outcome


def mapping_rejections(result: MappingResult) -> tuple[list[Rejection], dict, dict]:
    """The mapping's refusals as rejections, with the source record kept for each."""
    rejections, hashes, records = [], {}, {}
    for reject in result.rejected:
        digest = content_hash(reject.record)
        key = str(reject.key[0]) if reject.key else f"unkeyed:{digest[:16]}"
        rejections.append(Rejection(key, reject.reason, reject.error_class or VALIDATION))
        hashes[key], records[key] = digest, reject.record
    return rejections, hashes, records


def check_push_mapping(mapping: Mapping) -> str:
    """The one external-id field a push upserts by."""
    if len(mapping.key) != 1:
        raise ValueError(
            f"{mapping.filename}: a CRM push upserts by one external id, so key must name one "
            f"field, not {list(mapping.key)}"
        )
    return mapping.key[0]


def push_connection(
    tools: SyncTools,
    plan: SyncPlan,
    mapping: Mapping,
    name: str,
    scopes: frozenset[str],
    outcome: ConnectionOutcome,
) -> PushOutcome:
    key, kind = check_push_mapping(mapping), mapping.target.kind
    threshold = max_reject_rate()
    assert tools.push_state is not None and tools.crm is not None
    wh, store = tools.warehouse, tools.push_state
    rows = source_rows(wh, mapping, name)
    # With on_delete archive or flag, videos TikTok deleted are planned apart (docs/crm.md).
    live, deleted = split_deleted(mapping, source_records(rows), scopes)
    result = apply_mapping(mapping, live, scopes)
    refused, refused_hashes, refused_records = mapping_rejections(result)
    target = Target(mapping.name, kind, mapping.target.object, name)
    push_plan = plan_for(
        store,
        mapping.name,
        result.records,
        key,
        volatile=volatile_fields(mapping),
        force=plan.force_full_push,
        on_delete=delete_policy(mapping),
        deleted=deleted,
        connection=name,
    )
    if plan.dry_run:
        outcome.info(
            f"{name}: {mapping.name} dry run: {len(push_plan.creates)} to create, "
            f"{len(push_plan.updates)} to update, {push_plan.unchanged} unchanged"
        )
        return PushOutcome(
            mapping, push_plan, tuple(refused), None, None, threshold, plan.force_full_push
        )
    store.reject(target, refused, refused_hashes, refused_records)
    with tools.crm.client(kind, mapping.target.object) as client:
        report = run_push(client, store, target, push_plan, key)
        stats = client.http.stats
    pushed = PushOutcome(
        mapping, push_plan, tuple(refused), report, stats, threshold, plan.force_full_push
    )
    for rejection in report.rejected[:5]:
        outcome.warning(
            f"{name}: {mapping.name} rejected {rejection.key} ({rejection.error_class}): "
            f"{rejection.reason}"
        )
    if report.stopped is not None:
        raise PushStopped(pushed)
    outcome.info(
        f"{name}: {mapping.name} pushed {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
    )
    return pushed

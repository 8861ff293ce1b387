"""What a CRM push reports: asset metadata, dry-run samples and failures a user can act on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import dagster as dg

from resources.crm.diff import PushPlan
from resources.crm.errors import CrmError
from resources.crm.models import Archive, CallStats, Record, Rejection
from resources.crm.push import PushReport
from services.crm_push import RejectRateSettingError
from transforms import Mapping

SAMPLE_SIZE = 5


def _jsonable(record: Record) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in record.items()}


def _sample(records: Sequence[Record]) -> dg.MetadataValue:
    return dg.MetadataValue.json([_jsonable(record) for record in records[:SAMPLE_SIZE]])


def _rejection_sample(rejections: Sequence[Rejection]) -> dg.MetadataValue:
    return dg.MetadataValue.json(
        [
            {"key": r.key, "class": r.error_class, "reason": r.reason}
            for r in rejections[:SAMPLE_SIZE]
        ]
    )


def _archive_sample(archives: Sequence[Archive]) -> dg.MetadataValue:
    return dg.MetadataValue.json(
        [{"key": a.key, "crm_id": a.crm_id, "reason": a.reason} for a in archives[:SAMPLE_SIZE]]
    )


def _target(name: str, mapping: Mapping) -> dict[str, str]:
    return {
        "connection": name,
        "mapping": mapping.name,
        "target": mapping.target.kind,
        "object": mapping.target.object,
    }


def dry_run_metadata(
    name: str, mapping: Mapping, plan: PushPlan, refused: Sequence[Rejection]
) -> dict[str, Any]:
    return {
        **_target(name, mapping),
        "dry_run": True,
        "would_create": len(plan.creates),
        "would_update": len(plan.updates),
        "unchanged": plan.unchanged,
        "held_rejections": plan.held,
        "mapping_rejected": len(refused),
        "api_requests": 0,
        "sample_creates": _sample(plan.creates),
        "sample_updates": _sample(plan.updates),
        # on_delete: what the run would archive (or mark deleted), before it happens.
        "on_delete": mapping.on_delete,
        "would_archive": len(plan.archives),
        "would_flag_deleted": plan.flagged,
        "sample_archives": _archive_sample(plan.archives),
    }


def push_metadata(
    name: str,
    mapping: Mapping,
    report: PushReport,
    stats: CallStats,
    refused: Sequence[Rejection],
    forced: bool,
) -> dict[str, Any]:
    rejected = (*refused, *report.rejected)
    by_class = {
        f"rejected_{error_class}": sum(r.error_class == error_class for r in rejected)
        for error_class in ("validation", "transient", "auth")
    }
    return {
        **_target(name, mapping),
        "dagster/row_count": report.created + report.updated,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": len(rejected),
        **by_class,
        "held_rejections": report.held,
        "archived": report.archived,
        "not_sent": report.not_sent,
        "forced_full_push": forced,
        "rejection_sample": _rejection_sample(rejected),
        **stats.as_metadata(),
    }


def stopped_failure(
    name: str, mapping: Mapping, report: PushReport, metadata: dict[str, Any]
) -> dg.Failure:
    err = report.stopped
    assert err is not None
    return dg.Failure(
        description=(
            f"connection {name!r}: the push of {mapping.name} to {mapping.target.kind} stopped: "
            f"{err.message}. {report.created + report.updated} records sent before the stop are "
            f"saved; the {report.not_sent} not sent are kept in crm_rejections (class "
            f"{err.rejection_class}) and go with the next run."
        ),
        metadata={**metadata, **err.metadata()},
        allow_retries=err.retryable,
    )


@contextmanager
def crm_failures(name: str, mapping: Mapping) -> Iterator[None]:
    """Configuration problems fail the partition with the variable or field to fix."""
    try:
        yield
    except (CrmError, RejectRateSettingError) as err:
        facts = err.metadata() if isinstance(err, CrmError) else {"error_kind": "configuration"}
        raise dg.Failure(
            description=f"connection {name!r}: cannot push {mapping.name}: {err}",
            metadata={**facts, **_target(name, mapping)},
            allow_retries=False,
        ) from err

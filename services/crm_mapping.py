"""What a mapping file means for a CRM push: its volatile fields and its deletion policy.

Pure functions of a mapping (`transforms`) and records; `resources.crm` knows nothing of mapping
files, so the CRM clients and the push state stay independent of the mapping engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resources.crm.deletions import DeletePolicy
from resources.crm.models import DELETED_SOURCE, KEEP, Record
from resources.crm.presets import PRESETS
from transforms import Mapping, apply_mapping

# Source fields holding the pipeline's load time: they change on every run, not the content.
VOLATILE_SOURCES = frozenset({"synced_at"})


def volatile_fields(mapping: Mapping) -> frozenset[str]:
    """Target fields mapped from a volatile source: sent with the record, never compared."""
    return frozenset(f.target for f in mapping.fields if f.source_path[0] in VOLATILE_SOURCES)


def delete_policy(mapping: Mapping) -> DeletePolicy:
    """The mapping's `on_delete`, with the field that flags deleted records if it maps one."""
    mode = mapping.on_delete
    flag = next((f for f in mapping.fields if f.source == DELETED_SOURCE), None)
    if flag is None:
        return DeletePolicy(mode)
    target = PRESETS.get(mapping.target.kind)  # None for the warehouse
    string = flag.type == "string" or (target is not None and target.strings_only)
    return DeletePolicy(mode, flag.target, "string" if string else flag.type)


def split_deleted(
    mapping: Mapping, records: Sequence[dict[str, Any]], scopes: frozenset[str]
) -> tuple[list[dict[str, Any]], list[Record]]:
    """(live source records, mapped records of the deleted ones); with keep: (all, [])."""
    if delete_policy(mapping).mode == KEEP:
        return list(records), []
    live = [record for record in records if record.get(DELETED_SOURCE) is None]
    deleted = [record for record in records if record.get(DELETED_SOURCE) is not None]
    return live, apply_mapping(mapping, deleted, scopes).records if deleted else []

"""CRM records built from the extracted tables through the declarative mapping files.

Each mapping file whose target is `warehouse` fills one table named after its target object. The
mapping engine is pure (`transforms`); this module reads a connection's source rows and previous
daily snapshot, hands them over and writes the result in one transaction.

`previous.<field>` reads the previous daily snapshot of the same profile or video
(`tiktok_profile_stats_daily`, `tiktok_video_metrics_daily`): its newest snapshot dated strictly
before its latest one, which was taken together with the row being mapped. A rerun on the same day
therefore still compares with the day before, never with itself.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from resources.settings import mappings_dir
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.store import Warehouse
from services.outcome import ConnectionOutcome, Metadata
from services.plan import SyncPlan, SyncTools
from transforms import MappedField, Mapping, apply_mapping, load_mapping
from transforms.source_fields import WAREHOUSE

SOURCE_TABLES = {"profile": tables.PROFILES, "video": tables.VIDEOS}
REJECT_SAMPLE = 5
_ENTITY = "snapshot entity"  # never a valid target name, so it cannot clash with a mapped field


@dataclasses.dataclass(frozen=True)
class SnapshotTable:
    """A daily snapshot table, and which of its columns names the entity of a source record."""

    name: str
    entity_column: str
    record_field: str


SNAPSHOTS = {
    "profile": SnapshotTable(tables.PROFILE_STATS_DAILY, "open_id", "open_id"),
    "video": SnapshotTable(tables.VIDEO_METRICS_DAILY, "video_id", "id"),
}


@dataclasses.dataclass(frozen=True)
class MappingInputs:
    """What `apply_mapping` needs for one connection: source records and previous snapshots."""

    records: list[dict[str, Any]]
    previous: dict[tuple[Any, ...], dict[str, Any]]
    previous_day: date | None


def source_records(rows: list[dict]) -> list[dict]:
    """Warehouse rows as the mapping engine's source records (`synced_at` is the load time)."""
    return [
        {k: v for k, v in row.items() if not k.startswith("_")} | {"synced_at": row["_synced_at"]}
        for row in rows
    ]


def source_rows(wh: Warehouse, mapping: Mapping, connection_name: str) -> list[dict]:
    """The connection's rows of the mapping's source table (none before its first sync)."""
    table = SOURCE_TABLES[mapping.source]
    return wh.rows(table, connection_name=connection_name) if wh.has_table(table) else []


def uses_previous(mapping: Mapping) -> bool:
    return any(entry.expression.previous_names for entry in mapping.computed)


def mapping_inputs(
    wh: Warehouse, mapping: Mapping, connection_name: str, scopes: frozenset[str]
) -> MappingInputs:
    """The connection's source rows from the warehouse, and its previous snapshot if used."""
    rows = source_rows(wh, mapping, connection_name)
    records = source_records(rows)
    snapshots = SNAPSHOTS[mapping.source]
    if not records or not uses_previous(mapping) or not wh.has_table(snapshots.name):
        return MappingInputs(records, {}, None)
    # Per entity: a video whose metrics were not re-read today keeps yesterday as its latest
    # snapshot, so its previous one is older still (growth unknown: null), never itself (0).
    snapshot_rows = wh.latest_rows(
        snapshots.name,
        snapshots.entity_column,
        "snapshot_date",
        skip=1,
        connection_name=connection_name,
    )
    by_entity = {
        row[snapshots.entity_column]: {k: v for k, v in row.items() if not k.startswith("_")}
        for row in snapshot_rows
    }
    previous = {}
    for keyed in apply_mapping(_key_mapping(mapping, snapshots), records, scopes).records:
        if keyed[_ENTITY] in by_entity:
            previous[tuple(keyed[name] for name in mapping.key)] = by_entity[keyed[_ENTITY]]
    days = [row["snapshot_date"] for row in previous.values()]
    return MappingInputs(records, previous, max(days) if days else None)


def _key_mapping(mapping: Mapping, snapshots: SnapshotTable) -> Mapping:
    """The mapping's key fields plus the entity id: `previous` is keyed as the mapping keys rows."""
    entity = MappedField(
        target=_ENTITY,
        type="string",
        source=snapshots.record_field,
        required=True,
        transforms=(),
        scopes=frozenset(),
        when_scope_missing="null",
    )
    fields = (*(f for f in mapping.fields if f.target in mapping.key), entity)
    columns = tuple((f.target, f.type) for f in fields)
    return dataclasses.replace(mapping, fields=fields, computed=(), columns=columns)


def map_connection(
    tools: SyncTools,
    plan: SyncPlan,
    mapping: Mapping,
    name: str,
    scopes: frozenset[str],
    outcome: ConnectionOutcome,
) -> Metadata:
    """Map the connection's source rows with one warehouse mapping and upsert its records."""
    wh = tools.warehouse
    inputs = mapping_inputs(wh, mapping, name, scopes)
    result = apply_mapping(mapping, inputs.records, scopes, inputs.previous)
    table = tools.tables.get(mapping.target.object, mapping.columns, mapping.key)
    with wh.transaction() as db:
        written = wh.upsert(db, table, result.records, mapping.key, plan.load_id)
        method = wh.upsert_method(db)
    for reject in result.rejected[:REJECT_SAMPLE]:
        outcome.warning(f"{name}: {mapping.name} rejected {reject.key}: {reject.reason}")
    return {
        "dagster/row_count": written,
        "connection": name,
        "mapping": mapping.name,
        "rejected": len(result.rejected),
        "fields_left_empty_by_scope": ", ".join(
            f"{scope}: {', '.join(fields)}" for scope, fields in result.missing_scopes.items()
        )
        or "none",
        "previous_snapshot": str(inputs.previous_day or "none"),
        "load_method": method,
        "table": mapping.target.object,
    }


def all_mappings() -> list[Mapping]:
    return [load_mapping(path) for path in sorted(mappings_dir().glob("*.yaml"))]


def warehouse_mappings() -> list[Mapping]:
    return [mapping for mapping in all_mappings() if mapping.target.kind == WAREHOUSE]


def push_mappings() -> list[Mapping]:
    return [mapping for mapping in all_mappings() if mapping.target.kind != WAREHOUSE]

"""CRM records built from the extracted tables through the declarative mapping files.

Each mapping file in the mappings folder whose target is `warehouse` becomes one asset named after
its table: drop a YAML file in, get a new table. The mapping engine is pure (`transforms`); this
module only reads the source rows, hands them over and writes the result in one transaction.
"""

import dagster as dg

from pipelines.defs.tiktok import tables
from pipelines.defs.tiktok.assets import tiktok_profile, tiktok_videos
from pipelines.defs.tiktok.failures import connection_failures
from pipelines.defs.tiktok.partitions import connection_partitions
from resources.configurable import StateDatabaseResource, WarehouseResource
from resources.settings import mappings_dir
from transforms import Mapping, apply_mapping, load_mapping

_SOURCES = {"profile": (tables.PROFILES, tiktok_profile), "video": (tables.VIDEOS, tiktok_videos)}
REJECT_SAMPLE = 5


def source_records(rows: list[dict]) -> list[dict]:
    """Warehouse rows as the mapping engine's source records (`synced_at` is the load time)."""
    return [
        {k: v for k, v in row.items() if not k.startswith("_")} | {"synced_at": row["_synced_at"]}
        for row in rows
    ]


def build_crm_asset(mapping: Mapping) -> dg.AssetsDefinition:
    source_table, upstream = _SOURCES[mapping.source]

    @dg.asset(
        name=mapping.target.object,
        partitions_def=connection_partitions,
        group_name="crm",
        kinds={"python", "sql"},
        deps=[upstream],
        description=f"CRM records mapped by {mapping.name}.yaml from {source_table}.",
    )
    def _crm_records(
        context: dg.AssetExecutionContext,
        state_db: StateDatabaseResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        name = context.partition_key
        with connection_failures(name):
            connection = state_db.store().get(name)
        wh = warehouse.warehouse()
        rows = wh.rows(source_table, connection_name=name) if wh.has_table(source_table) else []
        result = apply_mapping(mapping, source_records(rows), connection.scopes)
        table = wh.ensure_table(mapping.target.object, mapping.columns, mapping.key)
        with wh.transaction() as db:
            written = wh.upsert(db, table, result.records, mapping.key, context.run.run_id)
        for reject in result.rejected[:REJECT_SAMPLE]:
            context.log.warning("rejected %s: %s", reject.key, reject.reason)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "connection": name,
                "mapping": mapping.name,
                "rejected": len(result.rejected),
                "fields_left_empty_by_scope": ", ".join(
                    f"{scope}: {', '.join(fields)}"
                    for scope, fields in result.missing_scopes.items()
                )
                or "none",
                "table": mapping.target.object,
            }
        )

    return _crm_records


def warehouse_mappings() -> list[Mapping]:
    mappings = [load_mapping(path) for path in sorted(mappings_dir().glob("*.yaml"))]
    return [mapping for mapping in mappings if mapping.target.kind == "warehouse"]


@dg.definitions
def crm_assets() -> dg.Definitions:
    return dg.Definitions(assets=[build_crm_asset(mapping) for mapping in warehouse_mappings()])

"""CRM pushes: one asset per HubSpot, Salesforce or generic mapping file, per connection.

Each push maps the connection's extracted rows (as the warehouse mapping assets do), compares
content hashes with the push state and upserts only new or changed records by external id, so a
rerun sends nothing and never duplicates a record. Push assets exist only for targets whose base
variable is set when the code location loads (HUBSPOT_ACCESS_TOKEN, SALESFORCE_INSTANCE_URL,
GENERIC_CRM_URL): with no CRM configured the code location, the daily job and the demo are as
before. They form the group `crm_push`, run by the `crm_push` job. See docs/crm.md.
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from pipelines.defs.batch import events_each
from pipelines.defs.crm.assets import _SOURCES, source_records
from pipelines.defs.crm.checks import max_reject_rate, reject_rate_result, reject_rate_spec
from pipelines.defs.crm.push_results import (
    crm_failures,
    dry_run_metadata,
    push_metadata,
    stopped_failure,
)
from pipelines.defs.tiktok.failures import connection_failures
from pipelines.defs.tiktok.partitions import connection_backfill_policy, connection_partitions
from resources import settings
from resources.configurable import StateDatabaseResource, WarehouseResource
from resources.crm.config import configured_kinds
from resources.crm.diff import content_hash, volatile_fields
from resources.crm.models import VALIDATION, Rejection
from resources.crm.push import plan_for, run_push
from resources.crm.resource import CrmResource
from resources.crm.state import PushStateStore, Target
from resources.database import make_engine
from resources.settings import mappings_dir
from transforms import Mapping, MappingResult, apply_mapping, load_mapping

PUSH_GROUP = "crm_push"
PUSH_JOB = "crm_push"
PushEvent = dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult


class PushConfig(dg.Config):
    dry_run: bool = Field(
        default=False,
        description="Report the would-be creates and updates (counts and a sample) as an "
        "observation; call nothing and change no state.",
    )
    force_full_push: bool = Field(
        default=False,
        description="Send every record, changed or not (after a CRM was restored, or to retry "
        "records refused for their content).",
    )


def mapping_rejections(result: MappingResult) -> tuple[list[Rejection], dict, dict]:
    """The mapping's refusals as rejections, with the source record kept for each."""
    rejections, hashes, records = [], {}, {}
    for reject in result.rejected:
        digest = content_hash(reject.record)
        key = str(reject.key[0]) if reject.key else f"unkeyed:{digest[:16]}"
        rejections.append(Rejection(key, reject.reason, reject.error_class or VALIDATION))
        hashes[key], records[key] = digest, reject.record
    return rejections, hashes, records


def build_push_asset(mapping: Mapping) -> dg.AssetsDefinition:
    if len(mapping.key) != 1:
        raise ValueError(
            f"{mapping.filename}: a CRM push upserts by one external id, so key must name one "
            f"field, not {list(mapping.key)}"
        )
    source_table, upstream = _SOURCES[mapping.source]
    key, kind = mapping.key[0], mapping.target.kind
    volatile = volatile_fields(mapping)

    @dg.asset(
        name=mapping.name,
        partitions_def=connection_partitions,
        backfill_policy=connection_backfill_policy,
        group_name=PUSH_GROUP,
        kinds={"python", kind},
        deps=[upstream],
        check_specs=[reject_rate_spec(mapping.name)],
        output_required=False,
        description=f"{kind} {mapping.target.object} records as last pushed by "
        f"{mapping.name}.yaml, keyed by {key}.",
    )
    def _push(
        context: dg.AssetExecutionContext,
        config: PushConfig,
        state_db: StateDatabaseResource,
        warehouse: WarehouseResource,
        crm: CrmResource,
    ) -> Iterator[PushEvent]:
        yield from events_each(
            context, lambda name: _push_one(context, name, config, state_db, warehouse, crm)
        )

    def _push_one(
        context: dg.AssetExecutionContext,
        name: str,
        config: PushConfig,
        state_db: StateDatabaseResource,
        warehouse: WarehouseResource,
        crm: CrmResource,
    ) -> Iterator[PushEvent]:
        with connection_failures(name):
            connection = state_db.store().get(name)
        with crm_failures(name, mapping):
            threshold = max_reject_rate()
        wh = warehouse.warehouse()
        rows = wh.rows(source_table, connection_name=name) if wh.has_table(source_table) else []
        result = apply_mapping(mapping, source_records(rows), connection.scopes)
        refused, refused_hashes, refused_records = mapping_rejections(result)
        store = PushStateStore(make_engine(state_db.url))
        target = Target(mapping.name, kind, mapping.target.object, name)
        plan = plan_for(
            store,
            mapping.name,
            result.records,
            key,
            volatile=volatile,
            force=config.force_full_push,
        )
        total = len(result.records) + len(refused)
        if config.dry_run:
            context.log.info(
                "dry run: %d to create, %d to update, %d unchanged",
                len(plan.creates),
                len(plan.updates),
                plan.unchanged,
            )
            yield dg.AssetObservation(
                asset_key=mapping.name, metadata=dry_run_metadata(name, mapping, plan, refused)
            )
            yield reject_rate_result(mapping.name, len(refused) + plan.held, total, threshold)
            return
        store.reject(target, refused, refused_hashes, refused_records)
        with crm_failures(name, mapping), crm.client(kind, mapping.target.object) as client:
            report = run_push(client, store, target, plan, key)
            stats = client.http.stats
        for rejection in report.rejected[:5]:
            context.log.warning(
                "rejected %s (%s): %s", rejection.key, rejection.error_class, rejection.reason
            )
        metadata = push_metadata(name, mapping, report, stats, refused, config.force_full_push)
        if report.stopped is not None:
            raise stopped_failure(name, mapping, report, metadata) from report.stopped
        context.log.info(
            "pushed %d created, %d updated, %d unchanged, %d rejected",
            report.created,
            report.updated,
            report.unchanged,
            len(report.rejected),
        )
        rejected = len(refused) + len(report.rejected) + report.held
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[reject_rate_result(mapping.name, rejected, total, threshold)],
        )

    return _push


def push_mappings() -> list[Mapping]:
    mappings = [load_mapping(path) for path in sorted(mappings_dir().glob("*.yaml"))]
    return [mapping for mapping in mappings if mapping.target.kind != "warehouse"]


@dg.definitions
def crm_push() -> dg.Definitions:
    configured = set(configured_kinds())
    assets = [build_push_asset(m) for m in push_mappings() if m.target.kind in configured]
    jobs = []
    if assets:
        jobs.append(
            dg.define_asset_job(
                name=PUSH_JOB,
                selection=dg.AssetSelection.groups(PUSH_GROUP),
                description="Push one connection's changed records to the configured CRMs.",
            )
        )
    resources = {"crm": CrmResource(mode=settings.mode())}
    return dg.Definitions(assets=assets, jobs=jobs, resources=resources)

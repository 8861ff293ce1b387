"""The daily sync as one multi-asset: every TikTok, CRM table and CRM push asset, in one step.

One step syncs all of a run's connections concurrently (`services.connection_sync`), each
connection through its whole chain: profile, videos, quality checks, CRM tables, CRM pushes. A
connection that fails is shown failed for its partition with its reason; every other connection's
tables and pushes complete in the same run. The asset graph still shows one asset per table and
push, each materialized per connection partition, and any subset can be materialized on its own.
"""

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Literal

import dagster as dg
from pydantic import Field

from pipelines.defs.batch import (
    batch_failure,
    check_evaluation,
    connection_failure,
    dagster_metadata,
    push_event,
    reject_rate_evaluation,
)
from pipelines.defs.crm.checks import REJECT_RATE_CHECK, reject_rate_spec
from pipelines.defs.quality.preview import column_schema
from pipelines.defs.tiktok.partitions import connection_backfill_policy, connection_partitions
from resources.configurable import StateDatabaseResource, TikTokResource, WarehouseResource
from resources.crm.presets import configured_kinds
from resources.crm.resource import CrmResource
from resources.settings import MODE_DEMO
from resources.warehouse import tiktok_tables as tables
from services import quality
from services.asset_names import PROFILE_ASSET, SOURCE_ASSETS, SYNC_ASSET, VIDEOS_ASSET
from services.connection_sync import sync_connections, sync_workers
from services.crm_push import check_push_mapping
from services.crm_records import push_mappings, warehouse_mappings
from services.plan import SyncPlan, SyncTools
from services.policy import policy_from_env
from transforms import Mapping

TIKTOK_POOL = "tiktok_api"  # steps that call TikTok share one concurrency pool (dagster.yaml)
# One group for every asset of the sync: Dagster's lineage collapses groups into boxes when there
# are several, and one group opens showing every table and push with its dependencies.
SYNC_GROUP = "tiktok_crm_sync"


class SyncConfig(dg.Config):
    """How this run syncs its connections (the defaults follow the sync policy)."""

    mode: Literal["policy", "full", "incremental"] = Field(
        default="policy",
        description="policy: TIKTOK_SYNC_MODE (default full: every video re-read daily); full: "
        "every video again, marking the ones TikTok no longer shows as deleted; incremental: new "
        "videos plus fresh metrics for the lookback window",
    )
    lookback_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="incremental mode re-reads metrics of videos posted in this many last days "
        "(default TIKTOK_LOOKBACK_DAYS, 30)",
    )
    sync_date: str | None = Field(
        default=None,
        description="the day the daily snapshots are dated (YYYY-MM-DD); default today (UTC)",
    )
    dry_run: bool = Field(
        default=False,
        description="CRM pushes report the would-be creates and updates as an observation; "
        "they call nothing and change no state",
    )
    force_full_push: bool = Field(
        default=False,
        description="CRM pushes send every record, changed or not (after a CRM was restored, or "
        "to retry records refused for their content)",
    )


def _crm_asset_name(mapping: Mapping) -> str:
    return mapping.target.object.replace(".", "__")


def _specs(warehouse: list[Mapping], pushes: list[Mapping]) -> list[dg.AssetSpec]:
    common = {"partitions_def": connection_partitions, "skippable": True}
    specs = [
        dg.AssetSpec(
            PROFILE_ASSET,
            group_name=SYNC_GROUP,
            kinds={"python", "sql"},
            description="A connection's TikTok profile with today's follower, like and video "
            "counts (and their daily history).",
            metadata={"dagster/column_schema": column_schema(tables.PROFILE_COLUMNS)},
            **common,
        ),
        dg.AssetSpec(
            VIDEOS_ASSET,
            group_name=SYNC_GROUP,
            kinds={"python", "sql"},
            description="Every published video of a connection with its current metrics (and "
            "daily history); deleted videos are marked, never removed.",
            metadata={"dagster/column_schema": column_schema(tables.VIDEO_COLUMNS)},
            **common,
        ),
        # The daily snapshots dashboards read: written with their source in one transaction,
        # assets of their own so a dbt model or another asset can depend on them.
        dg.AssetSpec(
            tables.PROFILE_STATS_DAILY,
            deps=[PROFILE_ASSET],
            group_name=SYNC_GROUP,
            kinds={"python", "sql"},
            description="One row per connection and day: the profile's follower, following, "
            "like and video counts. Each materialization charts its connection's last days.",
            metadata={"dagster/column_schema": column_schema(tables.PROFILE_STATS_COLUMNS)},
            **common,
        ),
        dg.AssetSpec(
            tables.VIDEO_METRICS_DAILY,
            deps=[VIDEOS_ASSET],
            group_name=SYNC_GROUP,
            kinds={"python", "sql"},
            description="One row per video and day: its like, comment, share and view counts.",
            metadata={"dagster/column_schema": column_schema(tables.VIDEO_METRICS_COLUMNS)},
            **common,
        ),
    ]
    specs += [
        dg.AssetSpec(
            _crm_asset_name(mapping),
            deps=[SOURCE_ASSETS[mapping.source]],
            group_name=SYNC_GROUP,
            kinds={"python", "sql"},
            description=f"CRM records mapped by {mapping.name}.yaml from "
            f"{SOURCE_ASSETS[mapping.source]}.",
            **common,
        )
        for mapping in warehouse
    ]
    specs += [
        dg.AssetSpec(
            mapping.name,
            deps=[SOURCE_ASSETS[mapping.source]],
            group_name=SYNC_GROUP,
            kinds={"python", mapping.target.kind},
            description=f"{mapping.target.kind} {mapping.target.object} records as last pushed "
            f"by {mapping.name}.yaml, keyed by {check_push_mapping(mapping)}.",
            **common,
        )
        for mapping in pushes
    ]
    return specs


def _check_specs(pushes: list[Mapping]) -> list[dg.AssetCheckSpec]:
    # Not Dagster-blocking: a failing integrity check holds back only its own connection's CRM
    # records (inside the step), never the other connections of the run.
    return [
        dg.AssetCheckSpec(name, asset=asset, description=description)
        for name, (asset, _blocking, description) in quality.CHECKS.items()
    ] + [reject_rate_spec(mapping.name) for mapping in pushes]


def _sync_now(config: SyncConfig) -> datetime:
    if config.sync_date is None:
        return datetime.now(UTC)
    day = date.fromisoformat(config.sync_date)
    if day == datetime.now(UTC).date():
        return datetime.now(UTC)
    return datetime.combine(day, time(12), tzinfo=UTC)  # a simulated day (demo, tests)


def build_sync_assets(warehouse: list[Mapping], pushes: list[Mapping]) -> dg.AssetsDefinition:
    crm_keys = {mapping.target.object: _crm_asset_name(mapping) for mapping in warehouse}
    warehouse_maps, push_maps = warehouse, pushes  # the step's own `warehouse` is the resource

    @dg.multi_asset(
        name=SYNC_ASSET,
        specs=_specs(warehouse, pushes),
        check_specs=_check_specs(pushes),
        can_subset=True,
        partitions_def=connection_partitions,
        backfill_policy=connection_backfill_policy,
        pool=TIKTOK_POOL,
    )
    def connection_sync(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        tiktok: TikTokResource,
        state_db: StateDatabaseResource,
        warehouse: WarehouseResource,
        crm: CrmResource,
    ) -> Iterator[dg.Output]:
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        policy = policy_from_env()
        if config.lookback_days is not None:
            policy = type(policy)(policy.mode, policy.full_every_days, config.lookback_days)
        plan = SyncPlan(
            load_id=context.run.run_id,
            now=_sync_now(config),
            # A snapshot is written with its source table, from the same answer of TikTok.
            profile=bool({PROFILE_ASSET, tables.PROFILE_STATS_DAILY} & selected),
            videos=bool({VIDEOS_ASSET, tables.VIDEO_METRICS_DAILY} & selected),
            mappings=tuple(m for m in warehouse_maps if crm_keys[m.target.object] in selected),
            pushes=tuple(m for m in push_maps if m.name in selected),
            checks=frozenset(key.name for key in context.selected_asset_check_keys),
            policy=policy,
            mode=None if config.mode == "policy" else config.mode,
            dry_run=config.dry_run,
            force_full_push=config.force_full_push,
        )
        tools = SyncTools(
            store=state_db.store(),
            warehouse=warehouse.warehouse(),
            tiktok=tiktok,
            crm=crm,
            push_state=state_db.push_state() if plan.pushes else None,
            leases=state_db.leases(holder=f"run {context.run.run_id}"),
            sync_log=state_db.sync_log(),
        )
        mode = _mode_metadata(tiktok, context) if plan.extracts else {}
        names = _run_partitions(context)
        failed = {}
        for outcome in sync_connections(tools, plan, names, sync_workers()):
            # Warnings only: every log line is an event-log write in the step's one thread, and
            # what the info lines say per connection is already in its materialization metadata.
            for level, message in outcome.log:
                if level >= logging.WARNING:
                    context.log.log(level, message)
            name = outcome.name
            for asset, metadata in outcome.materialized.items():
                key = dg.AssetKey(crm_keys.get(asset, asset))
                extra = mode if asset in (PROFILE_ASSET, VIDEOS_ASSET) else {}
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=key, partition=name, metadata=dagster_metadata(metadata) | extra
                    )
                )
            for check in outcome.checks:
                context.log_event(check_evaluation(dg.AssetKey(check.asset), check, name))
            for push_name, push in outcome.pushes.items():
                key = dg.AssetKey(push_name)
                context.log_event(push_event(key, push, name))
                if dg.AssetCheckKey(key, REJECT_RATE_CHECK) in context.selected_asset_check_keys:
                    context.log_event(reject_rate_evaluation(key, push, name))
            if not outcome.ok:
                failed[name] = connection_failure(outcome)
                context.log.error("%s", failed[name].description)  # names the connection
        context.log.info(
            "synced %d connections: %d succeeded, %d failed",
            len(names),
            len(names) - len(failed),
            len(failed),
        )
        if len(names) == 1 and failed:
            raise failed[names[0]]  # one connection: its own failure, metadata and all
        if failed:  # in partition order, whatever order the connections finished in
            raise batch_failure(len(names), {n: failed[n] for n in names if n in failed})
        yield from ()

    return connection_sync


def _run_partitions(context: dg.AssetExecutionContext) -> list[str]:
    """The run's connections; a check-only launch (no asset selected) names its partition by tag,
    which Dagster does not expose as the step's partition keys."""
    try:
        return list(context.partition_keys)
    except dg.DagsterInvariantViolationError:
        tag = context.run.tags.get("dagster/partition")
    if tag is None:
        raise dg.Failure(
            description="the sync runs per connection: launch it for connection partitions"
        )
    return [tag]


def _mode_metadata(tiktok: TikTokResource, context: dg.AssetExecutionContext) -> dict:
    """Once per step, however many connections it syncs."""
    if tiktok.mode != MODE_DEMO:
        return {"mode": "live"}
    context.log.info("DEMO MODE: simulated TikTok data from %s", tiktok.api_base_url)
    return {"mode": dg.MetadataValue.text("DEMO (simulated TikTok data, not real accounts)")}


def configured_push_mappings() -> list[Mapping]:
    """Push mappings whose CRM is configured (its base variable set) when the code loads."""
    configured = set(configured_kinds())
    return [mapping for mapping in push_mappings() if mapping.target.kind in configured]


@dg.definitions
def sync_assets() -> dg.Definitions:
    pushes = configured_push_mappings()
    jobs = []
    if pushes:
        jobs.append(
            dg.define_asset_job(
                name="crm_push",
                selection=dg.AssetSelection.assets(*(mapping.name for mapping in pushes)),
                partitions_def=connection_partitions,
                executor_def=dg.in_process_executor,
                description="Push the connections' changed records to the configured CRMs.",
            )
        )
    return dg.Definitions(assets=[build_sync_assets(warehouse_mappings(), pushes)], jobs=jobs)

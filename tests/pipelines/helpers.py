"""Builders for asset tests: live-mode resources on the simulator, and connected accounts."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

import dagster as dg

from pipelines.defs.batch import CALLS_KEY
from pipelines.defs.sync.assets import build_sync_assets
from pipelines.defs.tiktok.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    CONNECTION_PARTITIONS_NAME,
)
from resources.configurable import StateDatabaseResource, TikTokResource, WarehouseResource
from resources.connections.store import ConnectionStore
from resources.crm.resource import CrmResource
from resources.database import make_engine
from resources.tiktok.apps import load_app
from resources.tiktok.oauth import OAuthClient
from resources.warehouse.store import Warehouse
from services.crm_records import push_mappings, warehouse_mappings
from simulators.tiktok import TikTokSimulator

TEST_CLIENT_KEY = "awtestclientkey0001"
TEST_CLIENT_SECRET = "test-client-secret-not-real"
REDIRECT_URI = "http://127.0.0.1:8765/callback/"
ALL_SCOPES = ["user.info.basic", "user.info.profile", "user.info.stats", "video.list"]


def use_live_app(simulator: TikTokSimulator) -> None:
    """Register a live-mode app with the simulator and put its credentials in the environment."""
    simulator.set(apps={**simulator.config.apps, TEST_CLIENT_KEY: TEST_CLIENT_SECRET})
    os.environ["TIKTOK_CLIENT_KEY"] = TEST_CLIENT_KEY
    os.environ["TIKTOK_CLIENT_SECRET"] = TEST_CLIENT_SECRET


def connect(
    simulator: TikTokSimulator,
    store: ConnectionStore,
    name: str,
    account: int,
    scopes: list[str] = ALL_SCOPES,
    app: str = "default",
) -> None:
    client_key = load_app(app).client_key
    code = simulator.authorize(account, scopes, REDIRECT_URI, client_key=client_key)
    oauth = OAuthClient(load_app(app), api_base_url=simulator.base_url)
    store.save_grant(name, app, oauth.exchange_code(code, redirect_uri=REDIRECT_URI))


class Harness:
    """Resources over temporary SQLite databases, and a way to run one connection's partition."""

    def __init__(
        self,
        simulator: TikTokSimulator,
        tmp_path: Path,
        warehouse_url: str | None = None,
        mode: str = "live",
    ) -> None:
        self.instance = dg.DagsterInstance.ephemeral()
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        self.warehouse_url = warehouse_url or f"sqlite:///{tmp_path / 'warehouse.db'}"
        self.store = ConnectionStore(make_engine(state_url))
        self.warehouse = Warehouse(make_engine(self.warehouse_url))
        self.resources = {
            "tiktok": TikTokResource(api_base_url=simulator.base_url, mode=mode, backoff_cap_s=0.0),
            "state_db": StateDatabaseResource(url=state_url),
            "warehouse": WarehouseResource(url=self.warehouse_url),
            "crm": CrmResource(mode=mode),
        }
        self.assets = [build_sync_assets(warehouse_mappings(), [])]

    def with_pushes(self, *kinds: str) -> None:
        """Add the push assets of these CRM kinds (their fakes must be configured)."""
        pushes = [m for m in push_mappings() if m.target.kind in kinds]
        self.assets = [build_sync_assets(warehouse_mappings(), pushes)]
        self.resources["crm"] = CrmResource(backoff_cap_s=0.0, max_wait_s=0.0)

    def sync_range(
        self, first: str, last: str, *, config: dict | None = None
    ) -> dg.ExecuteInProcessResult:
        """One run over the partitions from `first` to `last`, as a batch of the schedule."""
        return dg.materialize(
            self.assets,
            resources=self.resources,
            instance=self.instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            raise_on_error=False,
            run_config=sync_config(**(config or {})),
        )

    def sync(
        self, name: str, *, selection: list[str] | None = None, config: dict | None = None
    ) -> dg.ExecuteInProcessResult:
        if name not in self.instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME):
            self.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, [name])
        return dg.materialize(
            self.assets,
            partition_key=name,
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
            selection=selection,
            run_config=sync_config(**(config or {})),
        )


def sync_config(**config: object) -> dict:
    """Run config of the sync step (`pipelines.defs.sync.assets.SyncConfig`)."""
    return {"ops": {"connection_sync": {"config": config}}} if config else {}


def materializations(result: dg.ExecuteInProcessResult, asset: str) -> list:
    return [
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(asset)
    ]


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = materializations(result, asset)
    found = {key: value.value for key, value in events[-1].metadata.items()}
    return found | found.get(CALLS_KEY, {})  # the call counters' table, read as plain keys


def failure_description(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data.user_failure_data
            return data.description if data else event.step_failure_data.error.message
    return ""


def check_evaluations(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult
) -> list[dg.AssetCheckEvaluation]:
    """The run's check evaluations as stored (a failed step's own events are only stored)."""
    return [
        entry.dagster_event.event_specific_data
        for entry in instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]


def stored_materializations(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, asset: str
) -> list[dg.AssetMaterialization]:
    """The run's materializations of `asset` as stored, failed step or not."""
    return [
        entry.asset_materialization
        for entry in instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        if entry.asset_materialization.asset_key == dg.AssetKey(asset)
    ]


def sync_on_simulated_clock(monkeypatch: object, clock: Callable[[], float]) -> None:
    """The sync dates its snapshots by `clock` (the simulator's), not by the real date."""
    import pipelines.defs.sync.assets as sync_assets

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return datetime.fromtimestamp(clock(), tz)

    monkeypatch.setattr(sync_assets, "datetime", SimulatedDatetime)  # type: ignore[attr-defined]

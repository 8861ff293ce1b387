"""What one sync run does for each of its connections, and the tools it shares between them.

A `SyncPlan` is built once per run (by the Dagster asset, the CLI or a benchmark) and is the same
for every connection of the run. `SyncTools` are shared by the worker threads: every member is
safe to use from several threads (engines pool their connections, the TikTok resource shares one
HTTP pool and one request budget, `TableCache` ensures each table once under a lock).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from resources.connections.leases import LeaseStore
from resources.connections.store import Connection, ConnectionStore
from resources.connections.sync_log import SyncLog
from resources.crm.client import CrmClient
from resources.crm.state import PushStateStore
from resources.tiktok.client import TikTokClient
from resources.warehouse.store import Warehouse
from resources.warehouse.table_cache import TableCache
from services.policy import SyncPolicy
from transforms import Mapping


class TikTokOpener(Protocol):
    """Opens a Display API client for one connection (`resources.configurable.TikTokResource`)."""

    def client(
        self, connection: Connection, store: ConnectionStore
    ) -> AbstractContextManager[TikTokClient]: ...


class CrmOpener(Protocol):
    """Opens a CRM client for one target (`resources.crm.resource.CrmResource`)."""

    def client(self, kind: str, object_name: str) -> AbstractContextManager[CrmClient]: ...


@dataclass(frozen=True)
class SyncPlan:
    """The assets (and checks) to materialize for every connection of a run, and how."""

    load_id: str  # the Dagster run id: `_load_id` of every row written
    now: datetime  # the sync's time (UTC): its date names the daily snapshots
    profile: bool = True
    videos: bool = True
    mappings: tuple[Mapping, ...] = ()  # warehouse mappings (CRM tables)
    pushes: tuple[Mapping, ...] = ()  # HubSpot, Salesforce and generic mappings
    checks: frozenset[str] | None = None  # None: every check of the selected assets
    policy: SyncPolicy = field(default_factory=SyncPolicy)
    mode: str | None = None  # "full" or "incremental" for every connection; None: the policy's
    dry_run: bool = False  # pushes report what they would send, and send nothing
    force_full_push: bool = False

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def extracts(self) -> bool:
        return self.profile or self.videos

    def runs_check(self, name: str) -> bool:
        return self.checks is None or name in self.checks


@dataclass
class SyncTools:
    store: ConnectionStore
    warehouse: Warehouse
    tiktok: TikTokOpener | None = None
    crm: CrmOpener | None = None
    push_state: PushStateStore | None = None
    leases: LeaseStore | None = None
    sync_log: SyncLog | None = None
    tables: TableCache = field(init=False)
    lease: Callable[[str], AbstractContextManager[object]] = field(init=False)

    def __post_init__(self) -> None:
        self.tables = TableCache(self.warehouse)
        leases = self.leases
        self.lease = leases.hold if leases is not None else (lambda _name: nullcontext())

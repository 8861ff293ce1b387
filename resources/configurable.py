"""Thin, typed Dagster resources that hand out the clients and stores of this package."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import dagster as dg
import httpx
from pydantic import PrivateAttr
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from resources.connections.leases import LeaseStore, release_run_leases
from resources.connections.store import Connection, ConnectionStore
from resources.connections.sync_log import SyncLog
from resources.connections.tokens import ConnectionTokens
from resources.crm.state import PushStateStore
from resources.database import database_problem, make_engine, redact_url
from resources.http_base import is_loopback
from resources.ratelimit.budget import BudgetConfigError, RequestBudget, parse_limits
from resources.settings import MODE_DEMO, MODE_LIVE, SettingError, check_database_url, data_dir
from resources.tiktok.apps import DEMO_APP, live_credentials_configured, load_app
from resources.tiktok.breaker import BREAKER_COOLDOWN_S, BREAKER_THRESHOLD, CircuitBreaker
from resources.tiktok.client import (
    BACKOFF_CAP_S,
    CONNECT_TIMEOUT_S,
    DEFAULT_BASE_URL,
    MAX_ATTEMPTS,
    RATE_LIMIT_PATIENCE_S,
    REQUEST_TIMEOUT_S,
    TikTokClient,
)
from resources.tiktok.oauth import DEFAULT_AUTH_BASE_URL, OAUTH_TIMEOUT, OAuthClient
from resources.warehouse.store import Warehouse


class DemoModeError(RuntimeError):
    """Demo and live must never mix: demo data in a real warehouse, or real tokens in the demo."""


def _engine(variable: str, url: str) -> Engine:
    """`make_engine`; a URL or SQLite file that cannot work fails the step in one line naming
    `variable` (or the file), not in a traceback per connection (issue 18)."""
    try:
        check_database_url(variable, url)
    except SettingError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None
    if make_url(url).get_backend_name() == "sqlite" and (
        problem := database_problem(variable, url)
    ):
        raise dg.Failure(description=problem, allow_retries=False)
    return make_engine(url)


class StateDatabaseResource(dg.ConfigurableResource):
    """The state database: connections, tokens and sync state (never the warehouse). Every store
    it hands out works on its one engine (one connection pool per process)."""

    url: str
    _db: Engine | None = PrivateAttr(default=None)
    _store: ConnectionStore | None = PrivateAttr(default=None)

    def engine(self) -> Engine:
        if self._db is None:
            self._db = _engine("STATE_DATABASE_URL", self.url)
        return self._db

    def store(self) -> ConnectionStore:
        if self._store is None:
            self._store = ConnectionStore(self.engine())
        return self._store

    def leases(self, holder: str) -> LeaseStore:
        """Per-connection leases held by `holder` (a run): one sync of a connection at a time."""
        return LeaseStore(self.engine(), holder=holder)

    def release_run_leases(self, run_id: str) -> int:
        return release_run_leases(self.engine(), run_id)

    def sync_log(self) -> SyncLog:
        return SyncLog(self.engine())

    def push_state(self) -> PushStateStore:
        return PushStateStore(self.engine())


class WarehouseResource(dg.ConfigurableResource):
    """Where the synced tables live: any SQLAlchemy URL (SQLite by default, PostgreSQL for real)."""

    url: str
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = Warehouse(_engine("WAREHOUSE_URL", self.url))
        return self._warehouse

    @property
    def display_url(self) -> str:
        return redact_url(self.url)


RATE_LIMIT_SCOPES = ("app", "connection")


def default_rate_limit_url() -> str:
    """The budget's store when none is configured: a SQLite file shared by this machine's runs."""
    path = data_dir() / "rate_budget.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class TikTokResource(dg.ConfigurableResource):
    """Opens a Display API client for one connection, with its tokens and app credentials.

    Every client of every run takes its requests from one shared per-endpoint budget. Unset budget
    fields are read from the environment at run time: TIKTOK_RATE_LIMIT_URL (sqlite:///...,
    redis://... or postgresql://...; default a SQLite file in the data folder), TIKTOK_RATE_LIMITS
    (`user_info=600,video_list=600,video_query=600` per minute; a ceiling: the budget lowers an
    endpoint's rate by itself when TikTok answers 429), TIKTOK_RATE_LIMIT_SCOPE (`app`, the safe
    default, or `connection` if TikTok counts per user token) and TIKTOK_RATE_LIMIT_PATIENCE_S (how
    long TikTok may keep refusing one request before the run fails; default 300).

    Thread-safe: the threads of one process share one budget and one connection pool, and each
    gets its own client (`client()` per connection).
    """

    api_base_url: str = DEFAULT_BASE_URL
    auth_base_url: str = DEFAULT_AUTH_BASE_URL
    mode: str = MODE_LIVE
    max_attempts: int = MAX_ATTEMPTS
    backoff_cap_s: float = BACKOFF_CAP_S
    request_timeout_s: float = REQUEST_TIMEOUT_S
    rate_limit_url: str | None = None
    rate_limits: str | None = None
    rate_limit_scope: str | None = None
    rate_limit_patience_s: float | None = None
    breaker_threshold: int = BREAKER_THRESHOLD
    breaker_cooldown_s: float = BREAKER_COOLDOWN_S
    _budget: RequestBudget | None = PrivateAttr(default=None)
    _open_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    # One connection pool per process for the API and one for OAuth, shared by every client of a
    # run: building an httpx.Client (its TLS context) costs more than a whole simulated request.
    _http: httpx.Client | None = PrivateAttr(default=None)
    _oauth_http: httpx.Client | None = PrivateAttr(default=None)

    def check_connection(self, connection: Connection) -> None:
        """Refuse any mix of demo and live: apps, hosts and credentials."""
        if self.mode == MODE_DEMO:
            configured = live_credentials_configured()
            if configured:
                raise DemoModeError(
                    f"demo mode refuses to run while TikTok credentials are configured "
                    f"({', '.join(configured)}); unset TIKTOK_CRM_SYNC_MODE to sync live"
                )
            if not is_loopback(urlsplit(self.api_base_url).hostname or ""):
                raise DemoModeError(
                    "demo mode talks only to the built-in simulator on 127.0.0.1, not "
                    f"{urlsplit(self.api_base_url).hostname}; start it with `tiktok-crm-sync demo`"
                )
            if connection.app != DEMO_APP:
                raise DemoModeError(
                    f"connection {connection.name!r} is a live connection (app "
                    f"{connection.app!r}); demo mode syncs only demo connections"
                )
        elif connection.app == DEMO_APP:
            raise DemoModeError(
                f"connection {connection.name!r} belongs to the built-in demo app and syncs only "
                "in demo mode (`tiktok-crm-sync demo`); live runs never read simulated data"
            )

    def oauth(self, app_name: str) -> OAuthClient:
        with self._open_lock:  # the run's threads start together: one pool, not one each
            if self._oauth_http is None:
                self._oauth_http = httpx.Client(timeout=OAUTH_TIMEOUT)
        return OAuthClient(
            load_app(app_name),
            api_base_url=self.api_base_url,
            auth_base_url=self.auth_base_url,
            http=self._oauth_http,
        )

    def _api_http(self) -> httpx.Client:
        with self._open_lock:
            return self._open_api_http()

    def _open_api_http(self) -> httpx.Client:
        if self._http is None:
            timeout = httpx.Timeout(
                self.request_timeout_s, connect=min(CONNECT_TIMEOUT_S, self.request_timeout_s)
            )
            self._http = httpx.Client(timeout=timeout)
        return self._http

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for http in (self._http, self._oauth_http):
            if http is not None:
                http.close()
        self._http = self._oauth_http = None

    def budget(self) -> RequestBudget:
        """The shared request budget (opened once per process, whichever thread asks first)."""
        with self._open_lock:
            return self._open_budget()

    def _open_budget(self) -> RequestBudget:
        if self._budget is None:
            url = (
                self.rate_limit_url
                or os.environ.get("TIKTOK_RATE_LIMIT_URL")
                or default_rate_limit_url()
            )
            limits = parse_limits(self.rate_limits or os.environ.get("TIKTOK_RATE_LIMITS"))
            self._budget = RequestBudget(url, limits)
        return self._budget

    def budget_scope(self, connection: Connection) -> str:
        scope = self.rate_limit_scope or os.environ.get("TIKTOK_RATE_LIMIT_SCOPE") or "app"
        if scope not in RATE_LIMIT_SCOPES:
            raise BudgetConfigError(
                f"TIKTOK_RATE_LIMIT_SCOPE must be 'app' (one budget per TikTok app, safe whichever "
                f"way TikTok counts) or 'connection' (one per user token), not {scope!r}"
            )
        return connection.app if scope == "app" else f"{connection.app}.{connection.name}"

    def patience_s(self) -> float:
        """How long TikTok may keep refusing one request (429) before the run fails."""
        if self.rate_limit_patience_s is not None:
            return self.rate_limit_patience_s
        raw = os.environ.get("TIKTOK_RATE_LIMIT_PATIENCE_S")
        if raw is None or not raw.strip():
            return RATE_LIMIT_PATIENCE_S
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0:
            raise BudgetConfigError(
                f"TIKTOK_RATE_LIMIT_PATIENCE_S must be a number of seconds >= 0 (default "
                f"{RATE_LIMIT_PATIENCE_S:.0f}), not {raw!r}"
            )
        return value

    @contextmanager
    def client(self, connection: Connection, store: ConnectionStore) -> Iterator[TikTokClient]:
        self.check_connection(connection)
        tokens = ConnectionTokens(store, connection.name, self.oauth(connection.app))
        client = TikTokClient(
            tokens,
            base_url=self.api_base_url,
            budget=self.budget().scoped(self.budget_scope(connection)),
            breaker=CircuitBreaker(self.breaker_threshold, self.breaker_cooldown_s),
            http=self._api_http(),
            max_attempts=self.max_attempts,
            backoff_cap_s=self.backoff_cap_s,
            rate_limit_patience_s=self.patience_s(),
        )
        try:
            yield client
        finally:
            client.close()

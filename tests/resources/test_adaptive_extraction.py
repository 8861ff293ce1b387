"""Extraction against the TikTok simulator when TikTok grants less than the budget assumes.

Round trips: connections synced (profile, every video, fresh metrics) through the production code
path (`TikTokClient` + `ConnectionTokens` + the shared `RequestBudget`) against the simulator on
127.0.0.1, which enforces its own sliding-minute limit and token lifetimes:

- TikTok allows 5 requests a minute, the budget starts at 600: the budget learns, and every
  connection completes;
- a 5-second access token behind a budget that makes each request wait longer than that: the
  token is refreshed after the wait, and the connection completes;
- several processes syncing through one PostgreSQL budget: they queue, nothing is refused.

Time: the first two run on a clock `SPEED` times faster than the wall clock, shared by the
simulator, the budget, the client and the tokens, so minutes of TikTok windows pass in seconds
without anything sleeping for real for long.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from resources.connections.store import ConnectionStore
from resources.connections.tokens import ConnectionTokens
from resources.database import make_engine
from resources.ratelimit.budget import RequestBudget, ScopedBudget, parse_limits
from resources.tiktok.apps import DEMO_APP, load_app
from resources.tiktok.client import TikTokClient
from resources.tiktok.extract import extract_profile, extract_videos, refresh_metrics
from resources.tiktok.oauth import OAuthClient
from resources.tiktok.pagination import PageWalk
from simulators.tiktok import SimulatorConfig, TikTokSimulator
from tests.pipelines.helpers import connect, use_live_app
from tests.resources.process_workers import sync_connections

REDIRECT_URI = "http://127.0.0.1:8765/callback/"
SCOPES = ["user.info.basic", "user.info.profile", "user.info.stats", "video.list"]
DISPLAY = ("user_info", "video_list", "video_query")


class FastClock:
    """Epoch seconds running `speed` times faster than the wall clock; `sleep` likewise shorter."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._origin = time.monotonic()
        self._start = time.time()

    def __call__(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)


def start_simulator(clock: FastClock, accounts: int, **knobs: object) -> TikTokSimulator:
    config = SimulatorConfig(
        seed=5, accounts=accounts, videos_per_account=60, zero_video_every=0, clock=clock, **knobs
    )
    simulator = TikTokSimulator(config)
    simulator.start()
    return simulator


def connect_all(simulator: TikTokSimulator, folder: Path, clock: FastClock) -> ConnectionStore:
    """One connection per simulated account, through the real OAuth code exchange."""
    store = ConnectionStore(make_engine(f"sqlite:///{folder / 'state.db'}"), now=clock)
    oauth = OAuthClient(load_app(DEMO_APP), api_base_url=simulator.base_url, now=clock)
    for account in range(simulator.config.accounts):
        code = simulator.authorize(account, SCOPES, REDIRECT_URI)
        store.save_grant(
            f"c{account}", DEMO_APP, oauth.exchange_code(code, redirect_uri=REDIRECT_URI)
        )
    return store


def sync(
    store: ConnectionStore,
    name: str,
    simulator: TikTokSimulator,
    budget: ScopedBudget,
    clock: FastClock,
) -> TikTokClient:
    """What a sync asks TikTok for one connection; the client, for its stats."""
    connection = store.get(name)
    oauth = OAuthClient(load_app(DEMO_APP), api_base_url=simulator.base_url, now=clock)
    client = TikTokClient(
        ConnectionTokens(store, name, oauth, now=clock),
        base_url=simulator.base_url,
        budget=budget,
        sleep=clock.sleep,
        now=clock,
    )
    extract_profile(client, connection.scopes)
    ids = [video.id for video in extract_videos(client, connection.scopes, PageWalk())]
    assert len(ids) == simulator.accounts[int(name[1:])].video_count
    for _batch in refresh_metrics(client, ids):
        pass
    client.close()
    return client


def assert_stats_match_tiktok(clients: list[TikTokClient], simulator: TikTokSimulator) -> None:
    """Requests, 429s and refreshes as counted by the clients are what TikTok counted."""
    seen = simulator.stats()
    for endpoint in DISPLAY:
        assert sum(c.stats.requests[endpoint] for c in clients) == seen[endpoint]["requests"]
        rate_limited = sum(c.stats.rate_limited_by_endpoint[endpoint] for c in clients)
        assert rate_limited == seen[endpoint]["rate_limited"]
    assert sum(c.stats.refreshes for c in clients) == seen["refreshes"]


def test_a_limit_of_5_a_minute_against_a_budget_of_600_lets_every_connection_complete(tmp_path):
    clock = FastClock(speed=60.0)
    simulator = start_simulator(clock, accounts=6, rate_limit_per_minute=5)
    try:
        store = connect_all(simulator, tmp_path, clock)
        budget = RequestBudget(
            f"sqlite:///{tmp_path / 'budget.db'}", parse_limits(None), now=clock, sleep=clock.sleep
        )
        simulator.reset_stats()
        names = [f"c{account}" for account in range(6)]
        with ThreadPoolExecutor(len(names)) as pool:  # one thread per connection, one budget
            clients = list(
                pool.map(lambda n: sync(store, n, simulator, budget.scoped("app"), clock), names)
            )
        seen = simulator.stats()
        assert seen["video_list"]["rate_limited"] > 0  # TikTok did refuse: the limit was real
        # What the budget learned, for every process sharing it: the busiest endpoint found
        # TikTok's limit; each refused endpoint is below the configured 600 (the quieter ones
        # met too few refusals to get all the way down, and need not).
        assert budget.limit("video_list", "app") <= 10  # about 5, as TikTok counts it
        for endpoint in DISPLAY:
            assert seen[endpoint]["rate_limited"] == 0 or budget.limit(endpoint, "app") < 600
        assert_stats_match_tiktok(clients, simulator)
        # The metadata names the learned limit of the busiest endpoint. Whether video_query met a
        # 429 too depends on thread timing (it did in most runs, not in CI's of 22:37).
        learned = clients[-1].stats.as_metadata()["rate_limit_learned"]
        assert "video_list=" in learned
        budget.close()
    finally:
        simulator.stop()


def test_a_5_second_token_behind_a_slow_budget_is_refreshed_after_the_wait(tmp_path):
    clock = FastClock(speed=20.0)
    simulator = start_simulator(clock, accounts=1, access_token_ttl=5)
    try:
        store = connect_all(simulator, tmp_path, clock)
        # 1 a minute: each request after an endpoint's first waits for the window (61 s),
        # longer than a token lives.
        limits = "user_info=1,video_list=1,video_query=1"
        budget = RequestBudget(
            f"sqlite:///{tmp_path / 'budget.db'}",
            parse_limits(limits),
            now=clock,
            sleep=clock.sleep,
        )
        simulator.reset_stats()
        client = sync(store, "c0", simulator, budget.scoped("app"), clock)
        assert client.stats.budget_wait_s > 5 * (sum(client.stats.requests.values()) - 3)
        # A fresh token for nearly every request, each counted once, as TikTok counted them.
        assert client.stats.refreshes >= sum(client.stats.requests.values()) - 3
        assert_stats_match_tiktok([client], simulator)
        assert store.get("c0").status == "active"
        budget.close()
    finally:
        simulator.stop()


@pytest.mark.postgres
def test_processes_syncing_through_one_postgres_budget_queue_and_none_is_refused(
    simulator, tmp_path, postgres_url
):
    pytest.importorskip("psycopg_pool", reason="`psycopg-pool` is needed for PostgreSQL budgets")
    use_live_app(simulator)
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    store = ConnectionStore(make_engine(state_url))
    names = [f"creator-{account}" for account in range(4)]
    for account, name in enumerate(names):
        connect(simulator, store, name, account=account)
    simulator.reset_stats()
    environ = dict(os.environ)
    environ["TIKTOK_RATE_LIMIT_URL"] = postgres_url
    environ["TIKTOK_RATE_LIMITS"] = "user_info=3000,video_list=3000,video_query=3000"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    runs = [
        context.Process(
            target=sync_connections,
            args=(state_url, simulator.base_url, environ, [name], barrier, results),
        )
        for name in names
    ]
    for run in runs:
        run.start()
    outcomes = sorted(results.get(timeout=120) for _ in runs)
    for run in runs:
        run.join(timeout=30)
    assert [outcome[1] for outcome in outcomes] == ["ok"] * 4, outcomes
    seen = simulator.stats()
    assert sum(outcome[2] for outcome in outcomes) == sum(seen[e]["requests"] for e in DISPLAY)
    assert sum(seen[e]["rate_limited"] for e in DISPLAY) == 0

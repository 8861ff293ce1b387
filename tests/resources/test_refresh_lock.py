"""Single-flight token refresh across processes: two runs of one connection never burn its token.

Round trip: two real processes (multiprocessing `spawn`) -> TikTokResource client -> simulator
answers `access_token_invalid` to both -> both refresh through `resources.connections.refresh_lock`
against the state database (SQLite file, PostgreSQL) -> TikTok's rotating refresh endpoint
(simulator, with latency so that the refreshes overlap). The simulator rotates refresh tokens:
without the lock the second refresh would be refused with `invalid_grant` and the connection burned.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from resources.connections.refresh_lock import RefreshLockTimeout, advisory_key, refresh_lock
from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.tiktok.apps import load_app
from resources.tiktok.oauth import OAuthClient
from tests.pipelines.helpers import connect, use_live_app
from tests.resources.process_workers import hold_refresh_lock, sync_profile

OVERLAP_LATENCY_MS = (300, 300)  # each call takes long enough for the two runs to overlap


def test_advisory_key_is_stable_signed_64_bit_and_per_connection():
    assert advisory_key("creator-a") == advisory_key("creator-a")
    assert advisory_key("creator-a") != advisory_key("creator-b")
    assert -(2**63) <= advisory_key("creator-a") < 2**63


def test_sqlite_lock_serializes_holders(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    order: list[str] = []
    first_inside = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with refresh_lock(engine, "creator-a"):
            order.append("first in")
            first_inside.set()
            release_first.wait(5)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_inside.wait(5)
    release_first.set()
    with refresh_lock(engine, "creator-a"):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_sqlite_lock_is_per_connection_across_processes(tmp_path):
    """The daily sync refreshes nearly every connection (tokens live 24 h): while another process
    refreshes one connection, another connection's refresh goes at once; the same one waits."""
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = make_engine(state_url)
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=hold_refresh_lock, args=(state_url, "creator-a", held, release))
    holder.start()
    try:
        assert held.wait(60), "the other process never took creator-a's lock"
        with refresh_lock(engine, "creator-b", timeout_s=1.0):
            pass
        busy = refresh_lock(engine, "creator-a", timeout_s=0.5)
        with pytest.raises(RefreshLockTimeout, match="creator-a"), busy:
            pass
    finally:
        release.set()
        holder.join(30)
    with refresh_lock(engine, "creator-a", timeout_s=5.0):  # free again once the holder let go
        pass


def _race_two_runs(simulator, state_url: str) -> tuple[list[tuple], ConnectionStore]:
    use_live_app(simulator)
    store = ConnectionStore(make_engine(state_url))
    connect(simulator, store, "creator-a", account=0)
    before = store.get("creator-a")
    simulator.expire_access_tokens(0)
    simulator.set(latency_ms=OVERLAP_LATENCY_MS)
    simulator.reset_stats()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    environ = dict(os.environ)
    runs = [
        context.Process(
            target=sync_profile,
            args=(state_url, simulator.base_url, environ, "creator-a", barrier, results),
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    outcomes = [results.get(timeout=90) for _ in runs]
    for run in runs:
        run.join(timeout=30)
    simulator.set(latency_ms=(0, 0))
    assert store.get("creator-a").token_version == before.token_version + 1
    return outcomes, store


def _assert_one_valid_refresh_token(simulator, outcomes: list[tuple], store) -> None:
    assert [outcome[0] for outcome in outcomes] == ["ok", "ok"], outcomes
    stats = simulator.stats()
    # Single flight: TikTok was asked once, so no refresh token was ever spent twice.
    assert stats["oauth_token"]["requests"] == 1 and stats["refreshes"] == 1
    # Both runs met the rejected token; one refreshed at TikTok, the other found the new tokens
    # in the store. `token_refreshes` counts what TikTok counted: one in all.
    assert sorted(outcome[2] for outcome in outcomes) == [0, 1]
    stored = store.get("creator-a")
    assert stored.status == "active"
    # The stored refresh token is TikTok's current one: it still refreshes.
    oauth = OAuthClient(load_app("default"), api_base_url=simulator.base_url)
    assert oauth.refresh(stored.refresh_token).access_token


def test_two_processes_refreshing_one_connection_keep_one_valid_token_sqlite(simulator, tmp_path):
    outcomes, store = _race_two_runs(simulator, f"sqlite:///{tmp_path / 'state.db'}")
    _assert_one_valid_refresh_token(simulator, outcomes, store)


@pytest.mark.postgres
def test_two_processes_refreshing_one_connection_keep_one_valid_token_postgres(
    simulator, postgres_url
):
    outcomes, store = _race_two_runs(simulator, postgres_url)
    _assert_one_valid_refresh_token(simulator, outcomes, store)

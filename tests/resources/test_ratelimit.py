"""The shared request budget: limits parsing, pyrate-limiter rates, waiting, and sharing.

Round trips: `RequestBudget` -> pyrate-limiter bucket -> SQLite file / Redis / PostgreSQL, with an
injected clock whose `sleep` only moves time (no real sleeping), and two real processes taking
from one budget through each shared store.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import uuid

import pytest

from resources.ratelimit import (
    DEFAULT_LIMIT_PER_MINUTE,
    ENDPOINTS,
    BudgetConfigError,
    BudgetUnavailable,
    RequestBudget,
    budget_rates,
    parse_limits,
)
from tests.resources.process_workers import take_budget

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class FakeClock:
    """`now` for the budget, and a `sleep` that only moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_budget(url: str, clock: FakeClock, **limits: int) -> RequestBudget:
    return RequestBudget(url, parse_limits(None) | limits, now=clock, sleep=clock.sleep)


def test_limits_default_to_600_per_endpoint_and_parse_overrides():
    assert parse_limits(None) == dict.fromkeys(ENDPOINTS, DEFAULT_LIMIT_PER_MINUTE)
    limits = parse_limits(" video_list=1200 , video_query=30 ")
    assert limits == {"user_info": 600, "video_list": 1200, "video_query": 30}


@pytest.mark.parametrize(
    "raw",
    [
        "video_lists=600",  # unknown endpoint
        "video_list=fast",  # not a number
        "video_list=0",  # a limit must let something through
        "video_list:600",  # wrong separator
    ],
)
def test_malformed_limits_say_how_to_write_them(raw):
    with pytest.raises(BudgetConfigError, match="ENDPOINT=REQUESTS_PER_MINUTE"):
        parse_limits(raw)


@pytest.mark.parametrize("url", ["mysql://budget", "sqlite://", "sqlite:///:memory:", "ftp://x/y"])
def test_unusable_budget_urls_are_refused_with_the_accepted_forms(url):
    with pytest.raises(BudgetConfigError, match="sqlite:///"):
        RequestBudget(url).acquire("user_info")


def test_rates_keep_a_margin_below_the_limit_and_smooth_to_about_a_second():
    smoothing, minute = budget_rates(600)
    assert (minute.limit, minute.interval) == (588, 60_000)
    assert smoothing.limit == 10 and 1_000 <= smoothing.interval <= 1_021
    assert smoothing.limit / smoothing.interval >= minute.limit / minute.interval
    assert [r.limit for r in budget_rates(30)] == [1, 29]  # a slow limit: one at a time
    assert [r.limit for r in budget_rates(600, smooth=False)] == [588]


def test_waits_until_the_window_has_room_and_reports_the_wait(tmp_path):
    clock = FakeClock()
    budget = make_budget(f"sqlite:///{tmp_path / 'budget.db'}", clock, video_list=600)
    waits = [budget.acquire("video_list") for _ in range(30)]
    assert waits[:10] == [0.0] * 10  # the first second's share goes at once
    assert all(wait > 0 for wait in waits[10::10])
    assert clock.now - 1_800_000_000.0 == pytest.approx(sum(waits), abs=0.05)
    budget.close()


def test_a_long_run_uses_the_limit_but_never_exceeds_it_in_any_minute(tmp_path):
    clock = FakeClock()
    budget = make_budget(f"sqlite:///{tmp_path / 'budget.db'}", clock, user_info=600)
    admitted = []
    for _ in range(1_300):
        budget.acquire("user_info")
        admitted.append(clock.now)
    start = 0
    for end, moment in enumerate(admitted):  # every sliding minute that ends at an admission
        while admitted[start] <= moment - 60.0:
            start += 1
        assert end - start + 1 <= 600 * 0.98
    achieved_per_minute = (len(admitted) - 1) / (admitted[-1] - admitted[0]) * 60
    assert 0.97 * 600 <= achieved_per_minute <= 600
    budget.close()


def test_endpoints_and_scopes_have_separate_budgets(tmp_path):
    clock = FakeClock()
    budget = make_budget(f"sqlite:///{tmp_path / 'budget.db'}", clock, user_info=60, video_list=60)
    assert budget.try_acquire("user_info", "app-a")
    assert not budget.try_acquire("user_info", "app-a")  # 1 a second at 60 a minute
    assert budget.try_acquire("video_list", "app-a")
    assert budget.scoped("app-b").acquire("user_info") == 0.0
    budget.close()


def test_two_budgets_on_one_file_share_the_count(tmp_path):
    url, clock = f"sqlite:///{tmp_path / 'budget.db'}", FakeClock()
    first = RequestBudget(url, {"video_list": 20}, margin=0.0, smooth=False, now=clock)
    second = RequestBudget(url, {"video_list": 20}, margin=0.0, smooth=False, now=clock)
    taken = [first.try_acquire("video_list") for _ in range(15)]
    taken += [second.try_acquire("video_list") for _ in range(15)]
    assert sum(taken) == 20
    clock.now += 60.01  # the window slides past every entry
    assert second.try_acquire("video_list")


def _two_processes_share(url: str) -> list[int]:
    """Two processes race 30 non-blocking acquisitions each for a budget of 20 a minute."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    scope = f"test-{uuid.uuid4().hex[:8]}"
    workers = [
        context.Process(target=take_budget, args=(url, scope, 30, barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    admitted = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return admitted


def test_two_processes_share_one_sqlite_budget(tmp_path):
    admitted = _two_processes_share(f"sqlite:///{tmp_path / 'budget.db'}")
    assert sum(admitted) == 20, admitted  # without sharing, each process would take 20


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    pytest.importorskip("redis", reason="the `redis` package is needed for Redis budgets")
    if not _redis_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis at 127.0.0.1:6379 is unreachable; under CI=true it must run")
        pytest.skip("Redis at 127.0.0.1:6379 is unreachable")
    return REDIS_URL


def test_two_processes_share_one_redis_budget(redis_url):
    admitted = _two_processes_share(redis_url)
    assert sum(admitted) == 20, admitted


def test_redis_budget_waits_with_the_injected_clock(redis_url):
    clock = FakeClock()
    budget = make_budget(redis_url, clock, video_query=120)
    scope = f"test-{uuid.uuid4().hex[:8]}"
    waits = [budget.acquire("video_query", scope) for _ in range(6)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # 2 a second at 120 a minute
    budget.close()


def test_an_unreachable_store_is_a_clear_transient_error_without_the_password():
    pytest.importorskip("redis", reason="the `redis` package is needed for Redis budgets")
    budget = RequestBudget("redis://:hunter2@127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(BudgetUnavailable, match="TIKTOK_RATE_LIMIT_URL") as caught:
        budget.acquire("user_info")
    assert "hunter2" not in str(caught.value)


@pytest.mark.postgres
def test_two_processes_share_one_postgres_budget(postgres_url):
    pytest.importorskip("psycopg_pool", reason="`psycopg-pool` is needed for PostgreSQL budgets")
    admitted = _two_processes_share(postgres_url)
    # PostgreSQL refuses a put that meets a locked table (NOWAIT) instead of queueing it, so a
    # race can admit fewer than 20, never more.
    assert 1 <= sum(admitted) <= 20, admitted

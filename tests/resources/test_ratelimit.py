"""The shared request budget: limits parsing, pyrate-limiter rates, waiting, sharing, adapting.

Round trips: `RequestBudget` -> pyrate-limiter bucket -> SQLite file / Redis / PostgreSQL, with an
injected clock whose `sleep` only moves time (no real sleeping); real processes taking from one
budget through each shared store at once (they queue, none is refused); and the learned limit:
a 429 reported to one budget lowers the limit every budget on that store enforces.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import uuid

import pytest

from resources.ratelimit.budget import (
    DEFAULT_LIMIT_PER_MINUTE,
    ENDPOINTS,
    RECOVERY_HOLD_S,
    BudgetConfigError,
    BudgetUnavailable,
    RequestBudget,
    budget_rates,
    limit_after_refusal,
    limit_at,
    parse_limits,
    window_count_at_refusal,
)
from resources.ratelimit.stores import LearnedLimit
from tests.resources.process_workers import queue_on_budget, stamp_admissions, take_budget

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


def test_rates_keep_a_margin_below_the_limit_over_the_minute_plus_the_latency_allowance():
    (rate,) = budget_rates(600)
    assert (rate.limit, rate.interval) == (588, 61_000)
    assert [(r.limit, r.interval) for r in budget_rates(30, 0.0, 2_000, 100)] == [(30, 2_100)]
    assert budget_rates(1)[0].limit == 1  # never below one request


def test_a_full_window_goes_at_once_and_the_next_request_waits_for_the_first_to_age_out(
    tmp_path,
):
    clock = FakeClock()
    budget = make_budget(f"sqlite:///{tmp_path / 'budget.db'}", clock, video_list=600)
    waits = [budget.acquire("video_list") for _ in range(590)]
    assert waits[:588] == [0.0] * 588  # the window's capacity less the margin: a burst
    # The 589th waits until the first has left the minute plus the latency allowance.
    assert waits[588] == pytest.approx(61.001, abs=0.01) and waits[589] == 0.0
    assert clock.now - 1_800_000_000.0 == pytest.approx(sum(waits), abs=0.05)
    budget.close()


def test_a_long_run_uses_the_limit_but_never_exceeds_it_in_any_minute(tmp_path):
    clock = FakeClock()
    budget = make_budget(f"sqlite:///{tmp_path / 'budget.db'}", clock, user_info=600)
    admitted = []
    for _ in range(1_300):
        budget.acquire("user_info")
        admitted.append(clock.now)
    assert_no_span_exceeds(admitted, 61.0, 588)
    # As fast as the sliding window allows: one window's capacity per window, bursts included.
    assert admitted[1_299] - admitted[0] == pytest.approx(2 * 61.0, abs=0.01)
    budget.close()


def assert_no_span_exceeds(stamps: list[float], span_s: float, limit: int) -> None:
    """No closed span of `span_s` holds more than `limit` of `stamps` (epoch seconds)."""
    ordered = sorted(int(stamp * 1000) for stamp in stamps)  # as the budget stores them
    for first, last in zip(ordered, ordered[limit:], strict=False):
        assert last - first > span_s * 1000, (first, last, limit)


def test_endpoints_and_scopes_have_separate_budgets(tmp_path):
    clock = FakeClock()
    budget = make_budget(f"sqlite:///{tmp_path / 'budget.db'}", clock, user_info=1, video_list=1)
    assert budget.try_acquire("user_info", "app-a")
    assert not budget.try_acquire("user_info", "app-a")  # 1 a minute
    assert budget.try_acquire("video_list", "app-a")
    assert budget.scoped("app-b").acquire("user_info") == 0.0
    budget.close()


def test_two_budgets_on_one_file_share_the_count(tmp_path):
    url, clock = f"sqlite:///{tmp_path / 'budget.db'}", FakeClock()
    first = RequestBudget(url, {"video_list": 20}, margin=0.0, now=clock)
    second = RequestBudget(url, {"video_list": 20}, margin=0.0, now=clock)
    taken = [first.try_acquire("video_list") for _ in range(15)]
    taken += [second.try_acquire("video_list") for _ in range(15)]
    assert sum(taken) == 20
    clock.now += 60.5  # TikTok's window has slid past every entry, the latency allowance not
    assert not second.try_acquire("video_list")
    clock.now += 0.51
    assert second.try_acquire("video_list")


def _in_processes(target: object, count: int, *args: object) -> list:
    """Run `target(url, scope, *args, barrier, results)` in `count` processes at once."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(count), context.Queue()
    scope = f"test-{uuid.uuid4().hex[:8]}"
    url, *rest = args
    workers = [
        context.Process(target=target, args=(url, scope, *rest, barrier, results))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


def _two_processes_share(url: str) -> list[int]:
    """Two processes race 30 non-blocking acquisitions each for a budget of 20 a minute."""
    return _in_processes(take_budget, 2, url, 30, 20)


def _processes_queue(url: str) -> list[tuple[int, list[str], float]]:
    """Four processes make 25 blocking acquisitions each, all at once, on one key."""
    return _in_processes(queue_on_budget, 4, url, 25, 60_000)


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
    budget = make_budget(redis_url, clock, video_query=3)
    scope = f"test-{uuid.uuid4().hex[:8]}"
    waits = [budget.acquire("video_query", scope) for _ in range(4)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 60 and waits[3] == 0  # 2 a window, less margin
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
    # Exactly the limit: a put that meets another one waits for it (pyrate-limiter's own bucket
    # refused it with LOCK TABLE NOWAIT, so a race admitted fewer).
    assert sum(admitted) == 20, admitted


@pytest.mark.postgres
def test_contention_on_a_postgres_budget_queues_and_refuses_none(postgres_url):
    pytest.importorskip("psycopg_pool", reason="`psycopg-pool` is needed for PostgreSQL budgets")
    outcomes = _processes_queue(postgres_url)
    assert [(admitted, errors) for admitted, errors, _ in outcomes] == [(25, [])] * 4
    # Room for every request (60,000 a minute): the contention was queued, not waited out.
    assert all(waited < 30 for _, _, waited in outcomes)


@pytest.mark.postgres
def test_four_processes_racing_a_postgres_budget_get_exactly_its_limit(postgres_url):
    pytest.importorskip("psycopg_pool", reason="`psycopg-pool` is needed for PostgreSQL budgets")
    admitted = _in_processes(take_budget, 4, postgres_url, 30, 40)
    assert sum(admitted) == 40, admitted  # none refused for contention, none over the limit


def test_contention_on_a_redis_budget_queues_and_refuses_none(redis_url):
    outcomes = _processes_queue(redis_url)
    assert [(admitted, errors) for admitted, errors, _ in outcomes] == [(25, [])] * 4


def test_contention_on_a_sqlite_budget_queues_and_refuses_none(tmp_path):
    outcomes = _processes_queue(f"sqlite:///{tmp_path / 'budget.db'}")
    assert [(admitted, errors) for admitted, errors, _ in outcomes] == [(25, [])] * 4


# The adaptive limit.


@pytest.mark.parametrize(
    ("current", "window_count", "expected"),
    [
        (600.0, 150, 420.0),  # TikTok let 150 through: cut, but by at most 30% at once
        (200.0, 150, 150.0),  # close to what TikTok let through: cut to exactly that
        (600.0, 0, 420.0),  # refused with nothing of ours in the window: someone else's traffic
        (150.0, 400, 150.0),  # the window holds more than the limit: nothing to learn
        (1.0, 0, 1.0),  # never below one a minute
    ],
)
def test_a_refusal_cuts_the_limit_to_what_tiktok_let_through(current, window_count, expected):
    assert limit_after_refusal(current, window_count) == pytest.approx(expected)


def test_while_refusals_pile_up_the_count_at_the_first_one_stands():
    # Our window also holds the requests TikTok refused, so later counts overstate its limit.
    first_cut = LearnedLimit(limit=420.0, cut_at=1_000.0, seen=150.0)
    assert window_count_at_refusal(179, first_cut, 1_010.0) == 150
    assert window_count_at_refusal(140, first_cut, 1_010.0) == 140  # a lower count wins
    assert window_count_at_refusal(179, first_cut, 1_061.0) == 179  # a window later: stale
    assert window_count_at_refusal(179, None, 1_010.0) == 179


def test_the_learned_limit_survives_the_trip_through_a_redis_string():
    for learned in (LearnedLimit(151.0, 1_800_000_000.25, 150.0), LearnedLimit(420.0, 1.5)):
        assert LearnedLimit.decode(learned.encode()) == learned


def test_the_limit_holds_for_one_window_then_recovers_slowly_up_to_the_ceiling():
    cut = LearnedLimit(limit=150.0, cut_at=1_000.0)
    assert limit_at(None, 600, 5_000.0) == 600
    assert limit_at(cut, 600, 1_000.0 + RECOVERY_HOLD_S) == 150.0
    assert limit_at(cut, 600, 1_000.0 + RECOVERY_HOLD_S + 60) == pytest.approx(153.0)
    assert limit_at(cut, 600, 1_000.0 + RECOVERY_HOLD_S + 35 * 60) == pytest.approx(300, rel=0.01)
    assert limit_at(cut, 600, 1_000.0 + 24 * 3600) == 600  # never above the configured ceiling


def _store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'budget.db'}"
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    pytest.importorskip("psycopg_pool", reason="`psycopg-pool` is needed for PostgreSQL budgets")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "redis", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    return _store_url(request, tmp_path)


def test_a_refusal_lowers_the_limit_of_every_budget_sharing_the_store(store_url):
    clock, scope = FakeClock(), f"test-{uuid.uuid4().hex[:8]}"
    here = RequestBudget(store_url, {"video_list": 600}, now=clock, sleep=clock.sleep)
    elsewhere = RequestBudget(store_url, {"video_list": 600}, now=clock, sleep=clock.sleep)
    admissions = [here.admit("video_list", scope) for _ in range(150)]  # TikTok lets 150 through
    refused = here.admit("video_list", scope)
    assert here.rate_limited(refused, scope) == 420  # at most 30% at once
    clock.now += 1.0  # the other process reads the learned limit at most a second later
    assert elsewhere.limit("video_list", scope) == 420
    # A refusal of a request admitted before that cut is old news: no second cut for it.
    assert here.rate_limited(admissions[-1], scope) == 420
    # Refusals of requests admitted after each cut close in on what TikTok let through.
    limits = [here.rate_limited(here.admit("video_list", scope), scope) for _ in range(3)]
    # 30% at a time while far above the window's count, then the count at the first refusal.
    assert limits == [294, 205, 150]
    clock.now += 1.0
    assert elsewhere.limit("video_list", scope) == limits[-1]
    here.close()
    elsewhere.close()


def test_a_lowered_limit_is_enforced_on_the_window_already_sent(tmp_path):
    clock = FakeClock()
    budget = RequestBudget(
        f"sqlite:///{tmp_path / 'budget.db'}", {"video_list": 600}, now=clock, sleep=clock.sleep
    )
    for _ in range(150):
        budget.admit("video_list")
    budget.rate_limited(budget.admit("video_list"))
    for _ in range(3):
        budget.rate_limited(budget.admit("video_list"))
    assert budget.limit("video_list") < 160
    started = clock.now
    budget.admit("video_list")  # the window is full at the new limit: wait for it to slide
    assert clock.now - started > 30
    budget.close()


# Bursts across processes: a window scaled down to BURST_WINDOW_S so several windows pass in
# seconds; the proof is in the budget's own admission stamps, never in how long anything took.
BURST_LIMIT, BURST_WINDOW_S, BURST_ALLOWANCE_S = 20, 4.0, 0.1
BURST_PROCESSES, BURST_ATTEMPTS = 4, 15  # 60 admissions: three windows' worth


def test_processes_hammering_one_budget_burst_a_window_then_never_exceed_it(store_url):
    outcomes = _in_processes(
        stamp_admissions,
        BURST_PROCESSES,
        store_url,
        BURST_ATTEMPTS,
        BURST_LIMIT,
        BURST_WINDOW_S,
        BURST_ALLOWANCE_S,
    )
    assert [errors for _, errors in outcomes] == [[]] * BURST_PROCESSES
    stamps = sorted(stamp for process_stamps, _ in outcomes for stamp in process_stamps)
    assert len(stamps) == BURST_PROCESSES * BURST_ATTEMPTS
    span_s = BURST_WINDOW_S + BURST_ALLOWANCE_S
    assert_no_span_exceeds(stamps, span_s, BURST_LIMIT)
    # Whole windows at once: the first window's capacity went within the first half of it (a
    # paced budget would have spread it over the whole window), and so did the next window's,
    # as soon as the first admissions aged out.
    first, second = stamps[0], stamps[BURST_LIMIT]
    assert stamps[BURST_LIMIT - 1] - first < BURST_WINDOW_S / 2
    assert first + span_s < second < first + span_s + BURST_WINDOW_S / 2
    assert stamps[2 * BURST_LIMIT - 1] - second < BURST_WINDOW_S / 2


def test_threads_of_one_process_share_a_budget_and_its_learned_limit(store_url):
    # The run model: 16-32 threads of one step, one budget. Every thread reads the learned
    # limit from the store itself (learned_refresh_s=0), which the SQLite store's connection
    # once refused to threads other than the one that opened it.
    import threading

    clock, scope = FakeClock(), f"test-{uuid.uuid4().hex[:8]}"
    budget = RequestBudget(
        store_url, {"video_list": 60_000}, now=clock, sleep=clock.sleep, learned_refresh_s=0.0
    )
    budget.rate_limited(budget.admit("video_list", scope), scope)  # a cut to 42,000
    seen: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                clock.now += 0.01  # within the hold after the cut: the limit stays put
                seen.append(budget.admit("video_list", scope).limit)
        except BaseException as err:  # collected, the test asserts there were none
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(seen) == 160 and set(seen) == {42_000}
    budget.close()


def test_the_settings_check_accepts_exactly_the_stores_the_budget_opens():
    from resources.ratelimit.backends import STORES
    from resources.settings import RATE_LIMIT_BACKENDS

    assert set(STORES) == set(RATE_LIMIT_BACKENDS)

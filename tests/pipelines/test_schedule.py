"""The daily schedule: a bounded number of runs, each connection at most once a day.

Each test builds the schedule's context on a test instance with the project's state database
(connections registered through the simulator's OAuth) and reads back the run requests, as the
daemon would launch them. Runs "already launched today" are added to the instance with the tags
the schedule gives its runs.

The catch-up pass is evaluated after real runs of the sync on the simulator (a connection whose
TikTok answers 500 until its circuit opens, one whose answers break the contract), so it reads
the failure metadata those runs really wrote.
"""

import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest

import pipelines.defs.sync.catch_up as catch_up
from pipelines.definitions import defs
from pipelines.defs.sync.catch_up import CATCH_UP_TAG, MAX_CATCH_UP_RUNS, catch_up_requests
from pipelines.defs.sync.schedules import SCHEDULE_NAME, SYNC_DAY_TAG, day_run_tags
from pipelines.defs.tiktok.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from resources.warehouse.reads import ConnectionSize
from services.policy import (
    FULL,
    INCREMENTAL,
    PolicyError,
    SyncPolicy,
    estimate_requests,
    policy_from_env,
)
from tests.pipelines.helpers import Harness, connect, use_live_app

TICK = datetime(2026, 11, 22, 6)


@pytest.fixture(scope="module")
def sync_defs() -> dg.Definitions:
    """The code location's definitions, loaded once for the module."""
    return defs()


@pytest.fixture(scope="module")
def schedule(sync_defs) -> dg.ScheduleDefinition:
    return sync_defs.resolve_schedule_def(SCHEDULE_NAME)


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(["a-one", "b-two", "c-three", "d-four"]):
        connect(simulator, harness.store, name, account=index)
    return harness


def tick(schedule, harness, instance, when: datetime = TICK):
    with dg.build_schedule_context(
        instance=instance,
        resources={
            "state_db": harness.resources["state_db"],
            "warehouse": harness.resources["warehouse"],
        },
        scheduled_execution_time=when,
    ) as context:
        return schedule(context)


def ranges(requests) -> list[tuple[str, str]]:
    return [
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
        for r in requests
    ]


def launched(instance: dg.DagsterInstance, requests) -> None:
    """Record the requested runs in the instance, as the daemon does when it launches them."""
    for request in requests:
        tags = {**request.tags, "dagster/schedule_name": SCHEDULE_NAME}
        instance.add_run(
            dg.DagsterRun(job_name="tiktok_daily_sync", run_id=str(uuid.uuid4()), tags=tags)
        )


def test_one_run_covers_every_active_connection(schedule, harness):
    harness.store.set_status("c-three", "needs_reconnect", "revoked")
    with dg.instance_for_test() as instance:
        requests = tick(schedule, harness, instance)
        partitions = instance.get_dynamic_partitions("tiktok_connection")
    assert ranges(requests) == [("a-one", "d-four")]
    assert all(r.tags[SYNC_DAY_TAG] == "2026-11-22" for r in requests)
    assert partitions == ["a-one", "b-two", "d-four"]


def test_runs_split_around_a_partition_that_must_not_sync(schedule, harness):
    with dg.instance_for_test() as instance:
        # c-three had synced before; now it needs reconnecting: runs leave it out.
        instance.add_dynamic_partitions(
            "tiktok_connection", ["a-one", "b-two", "c-three", "d-four"]
        )
        harness.store.set_status("c-three", "needs_reconnect", "revoked")
        assert ranges(tick(schedule, harness, instance)) == [
            ("a-one", "b-two"),
            ("d-four", "d-four"),
        ]


def test_runs_hold_at_most_the_batch_size(schedule, harness, monkeypatch):
    monkeypatch.setenv("SYNC_BATCH_SIZE", "3")
    with dg.instance_for_test() as instance:
        assert ranges(tick(schedule, harness, instance)) == [
            ("a-one", "c-three"),
            ("d-four", "d-four"),
        ]


def test_ticking_again_the_same_day_syncs_nothing_twice(schedule, harness, simulator):
    with dg.instance_for_test() as instance:
        first = tick(schedule, harness, instance)
        launched(instance, first)
        again = tick(schedule, harness, instance, TICK.replace(hour=7))
        assert (
            isinstance(again, dg.SkipReason)
            and "already synced on 2026-11-22" in again.skip_message
        )
        # Registered at noon: the next tick syncs it, and only it.
        connect(simulator, harness.store, "e-five", account=4 % len(simulator.accounts))
        noon = tick(schedule, harness, instance, TICK.replace(hour=12))
        assert ranges(noon) == [("e-five", "e-five")]
        launched(instance, noon)
        # The next day everyone is synced again.
        tomorrow = tick(schedule, harness, instance, TICK.replace(day=23))
        assert ranges(tomorrow) == [("a-one", "e-five")]


def test_a_tick_reads_the_days_runs_once_whatever_the_fleet(schedule, harness, monkeypatch):
    """The tick is on the schedule's clock: at 1,000 connections, reading the day's runs once per
    connection took 3 s of every tick."""
    with dg.instance_for_test() as instance:
        launched(instance, tick(schedule, harness, instance))
        reads = []
        read_runs = dg.DagsterInstance.get_run_records

        def counted(self, *args, **kwargs):
            reads.append(args)
            return read_runs(self, *args, **kwargs)

        monkeypatch.setattr(dg.DagsterInstance, "get_run_records", counted)
        again = tick(schedule, harness, instance, TICK.replace(hour=7))
    assert isinstance(again, dg.SkipReason)
    assert len(reads) == 1  # not one per connection (4 here)


@pytest.mark.parametrize(
    ("environ", "policy"),
    [
        ({}, SyncPolicy(FULL, 7, 30)),
        ({"TIKTOK_SYNC_MODE": "incremental"}, SyncPolicy(INCREMENTAL, 7, 30)),
        (
            {"TIKTOK_SYNC_MODE": "Incremental", "TIKTOK_FULL_SYNC_EVERY_DAYS": "0"},
            SyncPolicy(INCREMENTAL, 0, 30),
        ),
        ({"TIKTOK_LOOKBACK_DAYS": "90"}, SyncPolicy(FULL, 7, 90)),
    ],
)
def test_policy_from_the_environment(environ, policy):
    assert policy_from_env(environ) == policy


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"TIKTOK_SYNC_MODE": "sometimes"}, "TIKTOK_SYNC_MODE must be 'full'"),
        ({"TIKTOK_FULL_SYNC_EVERY_DAYS": "weekly"}, "TIKTOK_FULL_SYNC_EVERY_DAYS must be"),
        ({"TIKTOK_LOOKBACK_DAYS": "-1"}, "TIKTOK_LOOKBACK_DAYS must be"),
    ],
)
def test_a_bad_policy_names_the_variable(environ, complaint):
    with pytest.raises(PolicyError, match=complaint):
        policy_from_env(environ)


def test_incremental_policy_reads_everything_again_every_n_days():
    from datetime import date

    policy = SyncPolicy(INCREMENTAL, full_every_days=7)
    today = date(2026, 12, 2)
    assert policy.mode_for(None, today) == FULL  # never fully read: read everything
    assert policy.mode_for(date(2026, 11, 30), today) == INCREMENTAL
    assert policy.mode_for(date(2026, 11, 25), today) == FULL
    assert SyncPolicy(FULL).mode_for(date(2026, 12, 1), today) == FULL


def test_request_estimate_and_the_advice_when_a_day_is_not_enough():
    limits = {"user_info": 600, "video_list": 600, "video_query": 600}
    fleet = [ConnectionSize(60, recent_videos=10)] * 1000
    full = estimate_requests(fleet, FULL, limits)
    assert full.requests == {"user_info": 1000, "video_list": 3000, "video_query": 0}
    assert full.minutes == 5.0 and full.fits_a_day
    incremental = estimate_requests(fleet, INCREMENTAL, limits)
    assert incremental.requests == {"user_info": 1000, "video_list": 1000, "video_query": 1000}
    huge = estimate_requests([ConnectionSize(10_000_000)] * 3, FULL, {**limits, "video_list": 100})
    assert not huge.fits_a_day
    assert "TIKTOK_SYNC_MODE=incremental" in huge.advice()


DAY = "2026-11-22"
LATER = float("inf")  # long after every failure: only the rules, not the delay, decide


def run_day(harness, request_or_range, day: str = DAY) -> dg.ExecuteInProcessResult:
    """One run of the day, as the daemon launches a schedule's or the sensor's request."""
    if isinstance(request_or_range, dg.RunRequest):
        tags = request_or_range.tags
    else:
        tags = day_run_tags(*request_or_range, day)
    return dg.materialize(
        harness.assets,
        resources=harness.resources,
        instance=harness.instance,
        tags=tags,
        raise_on_error=False,
    )


@pytest.fixture
def day_harness(harness):
    """The harness on a test instance (as the other tests here use), live for the whole test."""
    with dg.instance_for_test() as instance:
        harness.instance = instance
        yield harness


def fail_day(harness, simulator, blip_answers: int, day: str = DAY):
    """The day's scheduled run: b-two meets `blip_answers` 500s (5 open its circuit: the run
    fails, and the answers after those are fine), c-three a broken contract."""
    harness.instance.add_dynamic_partitions(
        "tiktok_connection", ["a-one", "b-two", "c-three", "d-four"]
    )
    simulator.inject("user_info", "server_error", blip_answers, account=1)
    simulator.inject("user_info", "missing_envelope", 100, account=2)
    assert not run_day(harness, ("a-one", "d-four"), day).success
    return harness, harness.store.names()


def test_only_a_connection_lost_to_a_blip_is_caught_up_and_only_until_it_succeeds(
    day_harness, simulator
):
    harness, active = fail_day(day_harness, simulator, blip_answers=5)
    requests = catch_up_requests(harness.instance, DAY, active, LATER)
    # Not a-one and d-four (synced), not c-three (a retry cannot fix a broken contract).
    assert ranges(requests) == [("b-two", "b-two")]
    assert requests[0].tags[CATCH_UP_TAG] == "1" and requests[0].tags[SYNC_DAY_TAG] == DAY
    # Another day's runs say nothing about this one.
    assert catch_up_requests(harness.instance, "2026-11-23", active, LATER) == []
    assert run_day(harness, requests[0]).success
    assert catch_up_requests(harness.instance, DAY, active, LATER) == []  # synced: never again


def test_a_connection_that_keeps_failing_is_caught_up_a_bounded_number_of_times(harness, simulator):
    harness, active = fail_day(harness, simulator, blip_answers=1000)
    attempts = []
    while requests := catch_up_requests(harness.instance, DAY, active, LATER):
        assert ranges(requests) == [("b-two", "b-two")]  # a single-connection run failed too
        attempts.append(requests[0].tags[CATCH_UP_TAG])
        assert not run_day(harness, requests[0]).success
        assert len(attempts) <= MAX_CATCH_UP_RUNS, attempts
    assert attempts == [str(n) for n in range(1, MAX_CATCH_UP_RUNS + 1)]


def test_the_sensor_catches_up_today_after_the_delay_and_never_beside_a_run_in_flight(
    sync_defs, day_harness, simulator, monkeypatch
):
    today = datetime.now(UTC).strftime("%Y-%m-%d")  # the sensor's day (SYNC_TIMEZONE is UTC)
    harness, active = fail_day(day_harness, simulator, blip_answers=1000, day=today)
    (failed,) = harness.instance.get_run_records()
    assert failed.end_time is not None
    assert catch_up_requests(harness.instance, today, active, failed.end_time + 60) == []  # soon
    sensor = sync_defs.resolve_sensor_def("tiktok_daily_sync_catch_up")

    def evaluate() -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=harness.instance, resources={"state_db": harness.resources["state_db"]}
        ) as context:
            return sensor(context)

    monkeypatch.setattr(catch_up, "CATCH_UP_AFTER_S", 0)  # as if half an hour had passed
    assert ranges(evaluate().run_requests) == [("b-two", "b-two")]
    # The daemon launched it and it is still going: no second one beside it.
    launched(harness.instance, [dg.RunRequest(tags=day_run_tags("b-two", "b-two", today))])
    assert evaluate().skip_reason is not None

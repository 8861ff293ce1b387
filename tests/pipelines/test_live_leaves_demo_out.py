"""Live mode leaves demo connections out (issue 20): an older checkout's state database may still
hold demo connections beside live ones; the schedule syncs only the live ones, saying so in one
line, and the partitions sensor removes the demo partitions from the live instance.

Round trips: connections registered through the simulator's OAuth (one through the demo app),
the schedule and the sensor evaluated on a test instance as the daemon does, their requests and
log read back.
"""

from datetime import datetime

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.defs.sync.schedules import SCHEDULE_NAME
from pipelines.defs.sync.sensors import tiktok_connection_partitions_sensor
from pipelines.defs.tiktok.live import leave_out_demo
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME
from tests.pipelines.helpers import Harness, connect, use_live_app


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    connect(simulator, harness.store, "creator-a", account=0)
    connect(simulator, harness.store, "demo-01", account=1, app="demo")
    return harness


def test_the_schedule_syncs_only_live_connections_and_says_why(harness, capfd):
    schedule = defs().resolve_schedule_def(SCHEDULE_NAME)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(
            instance=instance,
            resources={k: harness.resources[k] for k in ("state_db", "warehouse")},
            scheduled_execution_time=datetime(2026, 12, 7, 6),
        ) as context:
            requests = schedule(context)
        partitions = instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME)
    starts = [request.tags["dagster/asset_partition_range_start"] for request in requests]
    assert starts == ["creator-a"] and partitions == ["creator-a"]
    logged = capfd.readouterr().err  # the schedule's log, on Dagster's console under test
    assert logged.count("demo connection") == 1
    assert "left out 1 demo connection(s) (demo-01)" in logged


def test_the_sensor_removes_demo_partitions_from_the_live_instance(harness):
    harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, ["demo-01"])
    with dg.build_sensor_context(
        instance=harness.instance, resources={"state_db": harness.resources["state_db"]}
    ) as context:
        result = tiktok_connection_partitions_sensor(context)
    added, deleted = result.dynamic_partitions_requests
    assert list(added.partition_keys) == ["creator-a"]
    assert list(deleted.partition_keys) == ["demo-01"]


def test_demo_mode_leaves_nothing_out(harness):
    connections = harness.store.list()
    assert leave_out_demo(connections, "demo") == (["creator-a", "demo-01"], [])
    assert leave_out_demo(connections, "live") == (["creator-a"], ["demo-01"])

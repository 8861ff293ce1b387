"""Fixtures: every test gets a fake clock and starts in-process simulators on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from simulators.tiktok import ManualClock, SimulatorConfig, TikTokSimulator
from tests.simulators.harness import Harness

StartSim = Callable[..., Harness]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def start_sim(clock: ManualClock) -> Iterator[StartSim]:
    """Factory: start_sim(**knobs) -> Harness; everything started is stopped after the test."""
    started: list[Harness] = []

    def start(**knobs: object) -> Harness:
        knobs.setdefault("clock", clock)
        sim = TikTokSimulator(SimulatorConfig(**knobs))
        # verify=False: plain HTTP on loopback, and it skips loading CA certificates per test.
        client = httpx.Client(base_url=sim.start(), timeout=5.0, verify=False)
        harness = Harness(sim, client, knobs["clock"])
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.client.close()
        harness.sim.stop()


@pytest.fixture
def harness(start_sim: StartSim) -> Harness:
    return start_sim()

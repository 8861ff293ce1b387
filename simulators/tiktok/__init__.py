"""TikTok OAuth + Display API v2 simulator: demo mode, tests and benchmarks.

Behaves as /work/shared/docs/tiktok-api.md describes, with a knob for every point that TikTok's
docs leave open, and injectable faults for every way the real API has been seen to misbehave.
"""

from simulators.tiktok.clock import ManualClock
from simulators.tiktok.config import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, SimulatorConfig
from simulators.tiktok.data import SimAccount
from simulators.tiktok.faults import FAULTS
from simulators.tiktok.simulator import TikTokSimulator, serve
from simulators.tiktok.traffic import ENDPOINTS

__all__ = [
    "DEMO_CLIENT_KEY",
    "DEMO_CLIENT_SECRET",
    "ENDPOINTS",
    "FAULTS",
    "ManualClock",
    "SimAccount",
    "SimulatorConfig",
    "TikTokSimulator",
    "serve",
]

"""Setup for `bench.extract`: a simulator, N connected accounts and a request recorder."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.tiktok.apps import DEMO_APP, load_app
from resources.tiktok.oauth import OAuthClient
from simulators.tiktok import SimulatorConfig, TikTokSimulator

TOKEN_KEYS_VAR = "TIKTOK_CRM_SYNC_TOKEN_KEYS"
REDIRECT_URI = "http://127.0.0.1:8765/callback/"
SCOPES = ["user.info.basic", "user.info.profile", "user.info.stats", "video.list"]
ENDPOINT_BY_PATH = {
    "/v2/user/info/": "user_info",
    "/v2/video/list/": "video_list",
    "/v2/video/query/": "video_query",
}
SETUP_WORKERS = 8


@dataclass
class Recorder:
    """Send time of every Display API request and (time, status) of every answer, per endpoint,
    from httpx event hooks (monotonic seconds)."""

    sent: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    answered: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, request: httpx.Request) -> None:
        endpoint = ENDPOINT_BY_PATH.get(request.url.path)
        if endpoint is not None:
            with self.lock:
                self.sent[endpoint].append(time.monotonic())

    def on_response(self, response: httpx.Response) -> None:
        endpoint = ENDPOINT_BY_PATH.get(response.request.url.path)
        if endpoint is not None:
            with self.lock:
                self.statuses[endpoint].append(response.status_code)
                self.answered[endpoint].append((time.monotonic(), response.status_code))

    def first_sent(self) -> float | None:
        with self.lock:
            return min((times[0] for times in self.sent.values() if times), default=None)

    def http_client(self, pool: int) -> httpx.Client:
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        return httpx.Client(
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=limits,
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
        )


def start_simulator(
    connections: int, videos: int, limit_per_minute: int, seed: int = 11
) -> TikTokSimulator:
    """Latency stays off while connecting; the caller turns it on for the measured part."""
    config = SimulatorConfig(
        seed=seed,
        accounts=connections,
        videos_per_account=videos,
        zero_video_every=0,
        rate_limit_per_minute=limit_per_minute,
        rate_limit_key="app",
    )
    simulator = TikTokSimulator(config)
    simulator.start()
    return simulator


def machine_facts() -> dict[str, object]:
    """Where a benchmark ran: cores, memory, Python, and when (UTC)."""
    memory_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }


def connect_all(
    simulator: TikTokSimulator, folder: Path, count: int, state_url: str | None = None
) -> ConnectionStore:
    """`count` connections `c0000`... through the real OAuth code exchange, in a state database
    (`state_url`, by default `state.db` in `folder`)."""
    if not os.environ.get(TOKEN_KEYS_VAR):
        # Tokens are encrypted at rest: a throwaway key for this benchmark's own state database.
        from cryptography.fernet import Fernet

        os.environ[TOKEN_KEYS_VAR] = Fernet.generate_key().decode()
    store = ConnectionStore(make_engine(state_url or f"sqlite:///{folder / 'state.db'}"))
    app = load_app(DEMO_APP)
    oauth = OAuthClient(app, api_base_url=simulator.base_url)

    def connect(index: int) -> None:
        # More connections than simulated accounts: an account is connected again (new grant).
        account = index % simulator.config.accounts
        code = simulator.authorize(account, SCOPES, REDIRECT_URI, client_key=app.client_key)
        grant = oauth.exchange_code(code, redirect_uri=REDIRECT_URI)
        store.save_grant(connection_name(index), DEMO_APP, grant)

    with ThreadPoolExecutor(SETUP_WORKERS) as pool:
        list(pool.map(connect, range(count)))
    return store


def connection_name(index: int) -> str:
    return f"c{index:04d}"

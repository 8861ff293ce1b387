"""Demo mode: the built-in TikTok simulator, demo connections, and real Dagster runs.

Demo mode is explicit (TIKTOK_CRM_SYNC_MODE=demo, set only by the `demo` and `ui` commands), refuses
to start when live TikTok credentials are configured, and syncs only connections of the `demo` app.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipelines.instance_home import InstanceNotConfigured, use_project_instance
from resources import settings
from resources.connections import ConnectionStore
from resources.crypto import TOKEN_KEYS_VAR, ensure_demo_key
from resources.database import make_engine
from resources.oauth_flow import finish_authorization, start_authorization
from resources.tiktok.apps import DEMO_APP, live_credentials_configured, load_app
from resources.tiktok.oauth import OAuthClient, TokenGrant
from resources.tiktok.scopes import BASIC, PROFILE, STATS, VIDEO_LIST
from simulators.tiktok import SimulatorConfig, TikTokSimulator

DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback/"
ALL_SCOPES = frozenset({BASIC, PROFILE, STATS, VIDEO_LIST})
# Every third demo connection grants no stats, to show a missing scope handled without failing.
NO_STATS_SCOPES = frozenset({BASIC, PROFILE, VIDEO_LIST})


class DemoRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoConnection:
    name: str
    scopes: frozenset[str]


def demo_connection_names(count: int) -> list[DemoConnection]:
    return [
        DemoConnection(f"demo-{i + 1:02d}", NO_STATS_SCOPES if i % 3 == 2 else ALL_SCOPES)
        for i in range(count)
    ]


def prepare_environment(project_dir: Path | None = None) -> None:
    """Enter demo mode in this process (and its children), or refuse beside live credentials."""
    configured = live_credentials_configured()
    if configured:
        raise DemoRefused(
            f"demo mode refuses to run while TikTok credentials are configured "
            f"({', '.join(configured)}): unset them to run the demo, or run the live sync"
        )
    os.environ["TIKTOK_CRM_SYNC_MODE"] = settings.MODE_DEMO
    if not os.environ.get(TOKEN_KEYS_VAR):
        # Zero configuration: demo tokens are encrypted with a generated demo-only key file,
        # which live mode never reads (resources.crypto).
        ensure_demo_key()
    try:
        use_project_instance(project_dir)
    except InstanceNotConfigured as err:
        raise DemoRefused(str(err)) from None


@contextmanager
def running_simulator(seed: int, accounts: int, videos: int) -> Iterator[TikTokSimulator]:
    simulator = TikTokSimulator(
        SimulatorConfig(seed=seed, accounts=accounts, videos_per_account=videos)
    )
    base_url = simulator.start()
    os.environ["TIKTOK_API_BASE_URL"] = base_url
    os.environ["TIKTOK_AUTH_BASE_URL"] = base_url
    try:
        yield simulator
    finally:
        simulator.stop()


def authorize_demo_connection(
    base_url: str, oauth: OAuthClient, account: int, scopes: frozenset[str]
) -> TokenGrant:
    """The real web flow on the simulator: authorize (state, PKCE), follow the redirect, exchange.

    The simulated user approves at once, so the redirect is read from the 302 instead of a
    listener (`connections connect` runs the same round trip with one).
    """
    del base_url  # the OAuth client already points at the simulator
    request = start_authorization(oauth, scopes, DEMO_REDIRECT_URI, "hex")
    with httpx.Client(timeout=10.0) as http:
        response = http.get(f"{request.url}&sim_account={account}", follow_redirects=False)
    if response.status_code != 302:
        raise DemoRefused(f"simulator authorize answered HTTP {response.status_code}")
    return finish_authorization(oauth, request, response.headers["location"])


def register_demo_connections(simulator: TikTokSimulator, count: int) -> list[str]:
    """(Re)authorize the demo connections in place: same names, so partitions keep their history."""
    base_url = os.environ["TIKTOK_API_BASE_URL"]
    oauth = OAuthClient(load_app(DEMO_APP), api_base_url=base_url, auth_base_url=base_url)
    store = ConnectionStore(make_engine(settings.state_database_url()))
    names = []
    for index, demo in enumerate(demo_connection_names(count)):
        grant = authorize_demo_connection(base_url, oauth, index, demo.scopes)
        display_name = simulator.accounts[index].display_name
        store.save_grant(demo.name, DEMO_APP, grant, display_name=display_name)
        names.append(demo.name)
    return names

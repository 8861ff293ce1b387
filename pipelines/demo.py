"""Demo mode: the built-in TikTok simulator, demo connections, and real Dagster runs.

Demo mode is explicit (TIKTOK_CRM_SYNC_MODE=demo, set only by the `demo` and `ui` commands), refuses
to start when live TikTok credentials are configured, and syncs only connections of the `demo` app.
It lives in its own home (`resources.settings.demo_home`, `.data/demo/` by default): state
database, warehouse, Dagster instance, token key file and the simulator's days, so live commands
never see a demo connection and `rm -rf .data/demo` (or `demo --reset`) clears the demo alone.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from pipelines.instance_home import InstanceNotConfigured, use_project_instance
from resources import settings
from resources.connections.crypto import TOKEN_KEYS_VAR, ensure_demo_key
from resources.connections.oauth_flow import finish_authorization, start_authorization
from resources.connections.store import ConnectionStore
from resources.database import make_engine
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


DAGSTER_FOLDER = "dagster"  # the demo's Dagster instance, inside the demo home
SESSION_FILE = "simulator.json"  # the simulated accounts and how many days they have lived


@dataclass(frozen=True)
class DemoSession:
    """The simulated world of the last demo: `ui` and the next `demo` continue it from its last
    day, so no daily snapshot is ever written with an earlier day's numbers."""

    seed: int
    accounts: int
    videos: int
    days_lived: int = 0  # whole days the simulator was advanced past its first day

    def running(self) -> AbstractContextManager[TikTokSimulator]:
        return running_simulator(self.seed, self.accounts, self.videos, self.days_lived)

    def same_world(self, other: DemoSession) -> bool:
        return (self.seed, self.accounts, self.videos) == (other.seed, other.accounts, other.videos)


def session_path() -> Path:
    return settings.demo_home() / SESSION_FILE


def load_session() -> DemoSession | None:
    try:
        return DemoSession(**json.loads(session_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None  # no demo yet, or a file from another version: start a new world


def save_session(session: DemoSession) -> None:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(session)) + "\n")


def continued(wanted: DemoSession) -> DemoSession:
    """The wanted world, at the last demo's day when it is the same world."""
    last = load_session()
    if last is not None and last.same_world(wanted):
        return last
    return wanted


def reset_demo() -> Path:
    """Delete the demo home (its state, warehouse, runs, key, days); the live home is untouched."""
    home = settings.demo_home()
    shutil.rmtree(home, ignore_errors=True)
    return home


def prepare_environment(project_dir: Path | None = None) -> None:
    """Enter demo mode in this process (and its children), or refuse beside live credentials."""
    del project_dir  # the demo's instance is in its own home, whatever the checkout holds
    configured = live_credentials_configured()
    if configured:
        raise DemoRefused(
            f"demo mode refuses to run while TikTok credentials are configured "
            f"({', '.join(configured)}): unset them to run the demo, or run the live sync"
        )
    # Pinned, so the processes `ui` starts in another folder find the same homes.
    os.environ["TIKTOK_CRM_SYNC_HOME"] = str(settings.live_data_dir())
    os.environ["TIKTOK_CRM_SYNC_MODE"] = settings.MODE_DEMO
    # The live DAGSTER_HOME keeps only live runs and partitions; the demo gets its own instance.
    os.environ["DAGSTER_HOME"] = str(settings.demo_home() / DAGSTER_FOLDER)
    if not os.environ.get(TOKEN_KEYS_VAR):
        # Zero configuration: demo tokens are encrypted with a generated demo-only key file,
        # which live mode never reads (resources.connections.crypto).
        ensure_demo_key()
    try:
        use_project_instance()
    except InstanceNotConfigured as err:
        raise DemoRefused(str(err)) from None


@contextmanager
def running_simulator(
    seed: int, accounts: int, videos: int, days_lived: int = 0
) -> Iterator[TikTokSimulator]:
    """The demo's simulator, `days_lived` days on (its creators' churn replayed)."""
    simulator = TikTokSimulator(
        SimulatorConfig(seed=seed, accounts=accounts, videos_per_account=videos)
    )
    if days_lived:
        simulator.advance_days(days_lived)
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

"""Issue 20: from the demo to the live path on one home, and `ui` continuing the demo's days.

Round trips, as a new user runs them, through the real CLI in subprocesses:

1. `demo`, then `simulator serve` (it prints what to export), a live `connections import` of a
   simulated account against it, then `sync --all`: the live connection syncs, the demo is not
   touched, a demo connection an older checkout left in the live state is left out with one
   line, and the output holds no stack trace and no sentence twice.
2. `demo --days 7`, then a materialization the way `ui` sets it up (its simulator helper, then
   the job in that environment): no snapshot goes backwards.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from resources.database import make_engine
from resources.tiktok.apps import TikTokApp
from resources.tiktok.oauth import OAuthClient, TokenGrant
from resources.warehouse.store import Warehouse
from simulators.tiktok.config import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET

REDIRECT_URI = "http://127.0.0.1:8765/callback/"
SCOPES = frozenset({"user.info.basic", "user.info.profile", "user.info.stats", "video.list"})
STARTUP_TIMEOUT_S = 60.0


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`simulator serve` as its own process: its base URL and the exports it printed."""
    port = free_port()
    out = (tmp_path / "serve.out").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "simulator", "serve", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                httpx.get(base_url, timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"simulator serve did not start: {Path(out.name).read_text()}")
                time.sleep(0.2)  # waiting for another process to bind: no clock to inject
        printed = Path(out.name).read_text()
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", printed, flags=re.MULTILINE))
        yield base_url, exports
    finally:
        process.terminate()
        process.wait(timeout=30)
        out.close()


def simulated_grant(base_url: str, client_key: str, secret: str, account: int) -> TokenGrant:
    """The OAuth round trip a browser would make, against the served simulator."""
    app = TikTokApp("x", client_key, secret)
    oauth = OAuthClient(app, api_base_url=base_url, auth_base_url=base_url)
    url = oauth.authorization_url(scopes=SCOPES, redirect_uri=REDIRECT_URI, state="s")
    answer = httpx.get(f"{url}&sim_account={account}", follow_redirects=False)
    code = httpx.URL(answer.headers["location"]).params["code"]
    return oauth.exchange_code(code, redirect_uri=REDIRECT_URI)


def no_sentence_twice(text: str) -> list[str]:
    sentences = [s.strip() for s in re.split(r"[\n;]|\. ", text) if len(s.strip()) > 20]
    return [s for s in set(sentences) if sentences.count(s) > 1]


def test_demo_then_the_live_path_on_one_home(tmp_path, served):
    base_url, exports = served
    demo = cli("demo", "--connections", "2", "--videos", "6")
    assert demo.returncode == 0, demo.stderr[-2000:]
    demo_warehouse = Warehouse(make_engine(f"sqlite:///{tmp_path / 'data/demo/warehouse.db'}"))
    demo_rows = demo_warehouse.rows("tiktok_profiles")
    assert {row["connection_name"] for row in demo_rows} == {"demo-01", "demo-02"}

    # What `simulator serve` printed is all the live path needs.
    assert {"TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_SECRET"} <= set(exports)
    assert exports["TIKTOK_API_BASE_URL"] == exports["TIKTOK_AUTH_BASE_URL"] == base_url
    live = os.environ | exports
    grant = simulated_grant(
        base_url, exports["TIKTOK_CLIENT_KEY"], exports["TIKTOK_CLIENT_SECRET"], account=2
    )
    tokens = tmp_path / "tokens.yaml"
    entry = {"name": "creator-live", "access_token": grant.access_token}
    entry |= {"refresh_token": grant.refresh_token, "expires_in": 3600}
    tokens.write_text(yaml.safe_dump([entry]))
    imported = cli("connections", "import", str(tokens), env=live)
    assert imported.returncode == 0, imported.stderr[-2000:]

    # An older checkout kept its demo connection in the live state: live runs leave it out.
    from resources import settings
    from resources.connections.store import ConnectionStore

    old = simulated_grant(base_url, DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, account=3)
    live_store = ConnectionStore(make_engine(settings.state_database_url()))
    live_store.save_grant("old-demo", "demo", old)

    synced = cli("sync", "--all", env=live)
    output = synced.stdout + synced.stderr
    assert synced.returncode == 0, output[-3000:]
    assert "synced 1 of 1 connections" in synced.stdout
    assert output.count("left out 1 demo connection(s) (old-demo)") == 1
    assert "Traceback" not in output and "Stack Trace" not in output
    assert no_sentence_twice(output) == []
    live_warehouse = Warehouse(make_engine(settings.warehouse_url()))
    assert [row["connection_name"] for row in live_warehouse.rows("tiktok_profiles")] == [
        "creator-live"
    ]
    assert live_store.get("old-demo").last_synced_at is None  # never touched
    assert demo_warehouse.rows("tiktok_profiles") == demo_rows  # the demo's home is untouched


def test_a_ui_materialization_after_demo_days_never_goes_backwards(tmp_path):
    demo = cli("demo", "--connections", "2", "--videos", "6", "--days", "7")
    assert demo.returncode == 0, demo.stderr[-2000:]
    warehouse = Warehouse(make_engine(f"sqlite:///{tmp_path / 'data/demo/warehouse.db'}"))
    before = {
        (row["connection_name"], row["snapshot_date"]): row
        for row in warehouse.rows("tiktok_profile_stats_daily")
    }
    assert len({day for _, day in before}) == 7

    import dagster as dg

    from pipelines import demo as demo_mode
    from pipelines.cli.demo import ui_simulator
    from pipelines.definitions import defs
    from pipelines.defs.sync.jobs import DAILY_SYNC_JOB

    demo_mode.prepare_environment()  # what `ui` does first
    with ui_simulator(), dg.DagsterInstance.get() as instance:
        # "Materialize" of one partition in the UI: the job, today's date, the UI's simulator.
        job = defs().resolve_job_def(DAILY_SYNC_JOB)
        result = job.execute_in_process(instance=instance, partition_key="demo-01")
    assert result.success
    after = warehouse.rows("tiktok_profile_stats_daily", connection_name="demo-01")
    assert len(after) == 7  # today's snapshot rewritten, no new day
    by_day = sorted(after, key=lambda row: row["snapshot_date"])
    for metric in ("follower_count", "likes_count"):
        series = [row[metric] for row in by_day]
        assert series == sorted(series), (metric, series)
        last_demo_day = before[("demo-01", by_day[-1]["snapshot_date"])][metric]
        assert series[-1] >= last_demo_day, metric

"""The Dagster UI in a real browser: asset graph -> backfill of two connections -> both succeed.

Starts `tiktok-crm-sync ui` (simulator + demo connections + `dagster dev` on 127.0.0.1) with a fresh
DAGSTER_HOME, drives Debian's headless Chromium with Playwright through "Materialize all", picks two
connection partitions, launches the backfill, and waits (through the webserver's GraphQL API, the
same one the UI reads) until its run (one batched run for both) succeeded. Screenshots land in
tests/e2e/artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 120
BACKFILL_TIMEOUT_S = 300
PARTITIONS = ("demo-01", "demo-02")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the e2e test must run")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(base_url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        json.dumps({"query": query}).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


@contextmanager
def running_ui(tmp_path: Path, *demo_args: str) -> Iterator[str]:
    """`tiktok-crm-sync ui` on a fresh home, after `demo *demo_args` when given; yields its URL."""
    _require_chromium()
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = os.environ | {"DAGSTER_HOME": str(home), "TIKTOK_CRM_SYNC_HOME": str(tmp_path / "data")}
    sizes = ["--connections", "2", "--videos", "8"]
    if demo_args:  # history for the UI to show, in the same home
        demo = [sys.executable, "-m", "pipelines.cli", "demo", *sizes, *demo_args]
        done = subprocess.run(demo, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    log = (tmp_path / "ui.log").open("w")
    command = [sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)]
    process = subprocess.Popen(
        [*command, *sizes],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{base_url}/server_info", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the UI did not start: {(tmp_path / 'ui.log').read_text()[-2000:]}"
                    )
                time.sleep(1)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[str]:
    with running_ui(tmp_path) as base_url:
        yield base_url


def _dismiss_welcome(page: object) -> None:
    """A fresh instance greets with a community dialog once; close it if it appears."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5000)
        skip.click()
    except playwright_api.TimeoutError:
        pass


def _wait_for_backfill(base_url: str) -> dict:
    query = (
        "{ partitionBackfillsOrError(limit: 5) { ... on PartitionBackfills { results "
        "{ id status partitionNames runs { status } } } } }"
    )
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while time.monotonic() < deadline:
        backfills = _graphql(base_url, query)["partitionBackfillsOrError"]["results"]
        if backfills and backfills[0]["status"] not in ("REQUESTED",):
            return backfills[0]
        time.sleep(3)
    pytest.fail("the backfill did not finish in time")


@pytest.mark.e2e
def test_backfill_of_two_connections_from_the_ui(dagster_ui: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{dagster_ui}/asset-groups", wait_until="networkidle")
        _dismiss_welcome(page)
        # One asset group: the lineage opens on the assets, not on collapsed group boxes.
        page.get_by_text("crm_contacts", exact=True).first.wait_for(timeout=30_000)
        assert page.get_by_text("tiktok_profile", exact=True).first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "asset_graph.png"))

        page.get_by_role("button", name="Materialize all").click()
        page.get_by_text("Select a partition or create one").click()
        for partition in PARTITIONS:
            page.get_by_text(partition, exact=True).first.click()
        page.keyboard.press("Escape")
        # In the launch dialog: the expanded lineage behind it shows each asset's partitions too.
        chosen = page.get_by_role("dialog").get_by_text(f"{len(PARTITIONS)} partitions")
        assert chosen.count() == 1
        page.get_by_role("button", name="Launch backfill").click()
        page.get_by_text("Created backfill").wait_for(timeout=30_000)

        backfill = _wait_for_backfill(dagster_ui)
        page.goto(f"{dagster_ui}/runs/b/{backfill['id']}", wait_until="networkidle")
        page.screenshot(path=str(ARTIFACTS / "backfill.png"), full_page=True)
        browser.close()
    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert sorted(backfill["partitionNames"]) == list(PARTITIONS)
    # Both connections in one batched run (SYNC_BATCH_SIZE, docs/operations.md).
    assert [run["status"] for run in backfill["runs"]] == ["SUCCESS"]
    for asset in ("tiktok_videos", "crm_contacts"):
        query = (
            f'{{ assetNodeOrError(assetKey: {{path: ["{asset}"]}}) {{ ... on AssetNode '
            "{ partitionStats { numMaterialized numFailed } } } }"
        )
        stats = _graphql(dagster_ui, query)["assetNodeOrError"]["partitionStats"]
        assert stats == {"numMaterialized": len(PARTITIONS), "numFailed": 0}, asset

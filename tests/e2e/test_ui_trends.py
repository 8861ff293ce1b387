"""The Dagster UI in a real browser shows what a data engineer came for: the snapshot tables in
the lineage, and one connection's trend over its days.

`demo --days 3` leaves three daily materializations per connection in a fresh home; then
`tiktok-crm-sync ui` serves them, and Debian's headless Chromium (Playwright) opens the lineage
and the profile snapshot's partition of one connection, whose trend chart (an SVG in the
materialization's markdown) must be drawn. Screenshots land in tests/e2e/artifacts/.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_ui_backfill import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    _dismiss_welcome,
    playwright_api,
    running_ui,
)

DAYS = 3
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # a snapshot_date cell of the table under the chart
SNAPSHOTS = ("tiktok_profile_stats_daily", "tiktok_video_metrics_daily")


@pytest.fixture
def ui_with_history(tmp_path: Path) -> Iterator[str]:
    with running_ui(tmp_path, "--days", str(DAYS)) as base_url:
        yield base_url


@pytest.mark.e2e
def test_the_lineage_shows_the_snapshots_and_a_connection_shows_its_trend(
    ui_with_history: str,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{ui_with_history}/asset-groups", wait_until="networkidle")
        _dismiss_welcome(page)
        for table in SNAPSHOTS:  # a node of the graph, not only a name in the sidebar
            node = page.get_by_text(table, exact=True)
            node.first.wait_for(timeout=30_000)
            assert node.count() >= 2, f"{table} is listed but not drawn in the lineage"
        page.screenshot(path=str(ARTIFACTS / "lineage.png"))

        partition = f"{ui_with_history}/assets/{SNAPSHOTS[0]}?view=partitions&partition=demo-01"
        page.goto(partition, wait_until="networkidle")
        page.get_by_text("[Show Markdown]").first.click()
        chart = page.locator("img[src^='data:image/svg+xml;base64,']")
        chart.first.wait_for(timeout=30_000)
        assert chart.first.bounding_box()["width"] > 300  # drawn, not a broken image icon
        svg = base64.b64decode(chart.first.get_attribute("src").split(",", 1)[1]).decode()
        page.screenshot(path=str(ARTIFACTS / "trend.png"))
        rows = page.locator("td").filter(has_text=DAY).count()
        browser.close()
    assert svg.count("<polyline") == 3  # followers, likes and videos of demo-01
    assert f"in {DAYS} days" in svg
    assert rows >= DAYS  # the table under the chart lists each day

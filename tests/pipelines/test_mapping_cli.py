"""`tiktok-crm-sync mapping check|preview`: files -> CLI, and synced warehouse rows -> CLI.

`check` runs on the shipped mapping files and on broken ones. `preview` runs after a real sync of
a simulated connection (OAuth code exchange, assets, SQLite warehouse): its records must equal the
rows the CRM asset wrote, and it must not call TikTok. Failures must say what to run.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from resources.settings import mappings_dir
from tests.pipelines.helpers import Harness, connect, use_live_app

BROKEN = """\
version: 1
name: broken
source: profile
target: {kind: warehouse, object: broken}
key: [tiktok_open_id]
fields:
  - source: open_id
    target: tiktok_open_id
    type: string
    required: true
  - source: follower_count
    target: followers
    type: intger
"""


@pytest.fixture
def harness(simulator, tmp_path, monkeypatch):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    monkeypatch.setenv("WAREHOUSE_URL", harness.warehouse_url)
    monkeypatch.setenv("STATE_DATABASE_URL", harness.resources["state_db"].url)
    return harness


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def requests_to_tiktok(simulator) -> int:
    return sum(
        v["requests"] for v in simulator.stats().values() if isinstance(v, dict) and "requests" in v
    )


def test_check_accepts_every_shipped_mapping():
    files = sorted(str(path) for path in mappings_dir().glob("*.yaml"))
    result = run("mapping", "check", *files)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") == len(files) >= 5
    assert (
        "warehouse_contacts.yaml: profile -> warehouse crm_contacts, key (tiktok_open_id)"
        in result.stdout
    )


def test_check_names_file_line_and_field_and_fails(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    shipped = str(mappings_dir() / "warehouse_videos.yaml")
    result = run("mapping", "check", str(broken), str(tmp_path / "absent.yaml"), shipped)
    assert result.exit_code == 1
    assert (
        f"{broken}:13: fields[1].type: unknown type 'intger' (did you mean 'integer'?)"
        in result.stderr
    )
    assert f"{tmp_path / 'absent.yaml'}:1: document: cannot read the file" in result.stderr
    assert result.stdout.startswith(f"ok {shipped}")  # the good file is still reported


def test_preview_shows_what_the_asset_writes_without_calling_tiktok(simulator, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    assert harness.sync("creator-a").success
    calls = requests_to_tiktok(simulator)
    mapping = str(mappings_dir() / "warehouse_videos.yaml")

    result = run(
        "mapping", "preview", mapping, "--connection", "creator-a", "--json", "--limit", "1000"
    )
    assert result.exit_code == 0, result.output
    preview = json.loads(result.stdout)
    written = {row["tiktok_video_id"]: row for row in harness.warehouse.rows("crm_videos")}
    assert preview["source_rows"] == len(written) == simulator.accounts[0].video_count
    for record in preview["records"]:
        stored = written[record["tiktok_video_id"]]
        for field in ("title", "views", "likes", "engagement_rate", "share_url", "tiktok_open_id"):
            assert record[field] == stored[field], field
    assert requests_to_tiktok(simulator) == calls

    table = run(
        "mapping",
        "preview",
        str(mappings_dir() / "warehouse_contacts.yaml"),
        "--connection",
        "creator-a",
    )
    assert table.exit_code == 0, table.output
    account = simulator.accounts[0]
    for shown in ("follower_growth", "followers", account.username, str(account.open_id)[:20]):
        assert shown in table.stdout
    assert "1 of 1 records from 1 source rows; rejected: 0; previous snapshot: none" in table.stdout


def test_preview_without_synced_rows_says_what_to_run(simulator, harness):
    connect(simulator, harness.store, "creator-a", account=0)
    calls = requests_to_tiktok(simulator)
    result = run(
        "mapping",
        "preview",
        str(mappings_dir() / "warehouse_contacts.yaml"),
        "--connection",
        "creator-a",
    )
    assert result.exit_code == 1
    assert "no rows of connection 'creator-a' in tiktok_profiles" in result.stderr
    assert "`tiktok-crm-sync demo`" in result.stderr and "tiktok_daily_sync" in result.stderr
    assert requests_to_tiktok(simulator) == calls


def test_preview_of_an_unknown_connection_or_a_broken_file_fails_clearly(harness, tmp_path):
    contacts = str(mappings_dir() / "warehouse_contacts.yaml")
    unknown = run("mapping", "preview", contacts, "--connection", "nobody")
    assert unknown.exit_code == 1
    assert (
        "no connection named 'nobody'" in unknown.stderr
        and "tiktok-crm-sync demo" in unknown.stderr
    )
    broken = Path(tmp_path / "broken.yaml")
    broken.write_text(BROKEN, encoding="utf-8")
    refused = run("mapping", "preview", str(broken), "--connection", "nobody")
    assert refused.exit_code == 1 and f"{broken}:13: fields[1].type" in refused.stderr

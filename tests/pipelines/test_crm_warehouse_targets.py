"""Mapping files -> CRM assets -> warehouse tables: a schema-qualified target, end to end on SQLite.

A mapping whose `target.object` is `main.creator_dashboard` (SQLite's main schema) must become a
loadable asset (Dagster names cannot hold dots) that fills that table in a real sync.
"""

import shutil

from resources.settings import mappings_dir
from tests.pipelines.helpers import Harness, connect, failure_description, metadata, use_live_app


def test_a_schema_qualified_target_becomes_an_asset_and_a_table(simulator, tmp_path, monkeypatch):
    folder = tmp_path / "mappings"
    folder.mkdir()
    text = (mappings_dir() / "warehouse_contacts.yaml").read_text(encoding="utf-8")
    qualified = text.replace("object: crm_contacts", "object: main.creator_dashboard")
    (folder / "warehouse_contacts.yaml").write_text(qualified, encoding="utf-8")
    shutil.copy(mappings_dir() / "warehouse_videos.yaml", folder)
    monkeypatch.setenv("MAPPINGS_DIR", str(folder))
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    connect(simulator, harness.store, "creator-a", account=0)

    result = harness.sync("creator-a")
    assert result.success, failure_description(result)
    assert metadata(result, "main__creator_dashboard")["table"] == "main.creator_dashboard"
    rows = harness.warehouse.rows("main.creator_dashboard")
    assert [row["tiktok_open_id"] for row in rows] == [simulator.accounts[0].open_id]

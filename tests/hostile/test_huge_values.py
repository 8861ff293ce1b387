"""Huge and unstorable values through the shipped mappings and the warehouse load, on real SQLite
and real PostgreSQL (binary COPY).

A 10 MB bio or title is mapped and stored whole (or cut by the mapping's `truncate`); a batch
with one value the database cannot store fails as a whole with a WarehouseError naming the table,
and the table keeps exactly the rows it had: no partial write of a batch.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from resources.database import make_engine
from resources.warehouse.store import Warehouse, WarehouseError
from tests.hostile import snapshot
from tests.transforms.builders import ALL_SCOPES, profile, video
from transforms import apply_mapping, load_mapping

MAPPINGS = Path(__file__).parents[2] / "pipelines" / "mappings"
TEN_MB = 10 * 1024 * 1024
# Mapping and storing 10 MB of text is linear work: seconds even on a loaded shared machine.
MAX_SECONDS = 20.0


def test_a_ten_megabyte_bio_and_title_are_mapped_and_stored_whole(warehouse: Warehouse) -> None:
    started = time.perf_counter()
    bio = ("\U0001f3b5 creator bio \u202e" * (TEN_MB // 16))[:TEN_MB]
    contacts = load_mapping(MAPPINGS / "warehouse_contacts.yaml")
    mapped = apply_mapping(contacts, [profile(bio_description=f"  {bio}  ")], ALL_SCOPES)
    assert mapped.rejected == [] and mapped.records[0]["bio"] == bio.strip()
    table = warehouse.ensure_table(contacts.target.object, contacts.columns, contacts.key)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, mapped.records, contacts.key, "run-1")
    [stored] = warehouse.rows(contacts.target.object)
    assert stored["bio"] == bio.strip()

    # The video mapping cuts titles to 255 characters but keeps the whole description.
    videos = load_mapping(MAPPINGS / "warehouse_videos.yaml")
    text = "t" * TEN_MB
    mapped = apply_mapping(videos, [video(title=text, video_description=text)], ALL_SCOPES)
    table = warehouse.ensure_table(videos.target.object, videos.columns, videos.key)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, mapped.records, videos.key, "run-1")
    [stored] = warehouse.rows(videos.target.object)
    assert (len(stored["title"]), len(stored["description"])) == (255, TEN_MB)
    assert time.perf_counter() - started < MAX_SECONDS


def test_a_huge_value_that_fails_a_cast_is_rejected_with_a_short_reason() -> None:
    contacts = load_mapping(MAPPINGS / "warehouse_contacts.yaml")
    records = [profile(follower_count="9" * TEN_MB), profile(open_id="other")]
    started = time.perf_counter()
    result = apply_mapping(contacts, records, ALL_SCOPES)
    assert time.perf_counter() - started < MAX_SECONDS
    assert [r["tiktok_open_id"] for r in result.records] == ["other"]
    [rejected] = result.rejected
    assert rejected.field == "followers" and len(rejected.reason) < 300
    assert f"length {TEN_MB}" in rejected.reason


KEY = ["id"]
COLUMNS = [("id", "string"), ("title", "string"), ("views", "integer")]
BEFORE = [{"id": "kept", "title": "old", "views": 1}, {"id": "updated", "title": "old", "views": 2}]


def _load(warehouse: Warehouse, rows: list[dict]) -> None:
    table = warehouse.ensure_table("videos_hostile", COLUMNS, KEY)
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, rows, KEY, "hostile-run")


def _batch_with(bad: dict) -> list[dict]:
    # Enough rows for several chunks, an update of an existing row first, the bad row last.
    fine = [{"id": f"new-{i}", "title": "x" * 1000, "views": i} for i in range(2_500)]
    return [{"id": "updated", "title": "new", "views": 3}, *fine, {"id": "bad", **bad}]


@pytest.mark.parametrize(
    "bad",
    [
        # a key repeated within the batch, and a missing key
        {"id": "new-7", "title": "again", "views": 1},
        {"id": None, "title": "no key", "views": 1},
        # a value no column type takes (a mapping's `type:` cast never emits one)
        {"title": ["a", "list"], "views": 1},
        # a row with other columns than the first
        {"title": "x", "views": 1, "extra": "column"},
    ],
)
def test_a_batch_with_one_bad_row_writes_nothing(warehouse: Warehouse, bad: dict) -> None:
    _load(warehouse, BEFORE)
    before = snapshot(warehouse)
    rows = _batch_with(bad)
    if bad.get("id", "bad") != "bad":
        rows[-1] = bad
    with pytest.raises(WarehouseError, match="videos_hostile"):
        _load(warehouse, rows)
    assert snapshot(warehouse) == before


def test_a_nul_in_ten_megabytes_is_stored_or_refused_whole(warehouse: Warehouse) -> None:
    _load(warehouse, BEFORE)
    before = snapshot(warehouse)
    title = "x" * TEN_MB + "\x00"
    if warehouse.engine.dialect.name == "sqlite":
        _load(warehouse, _batch_with({"title": title, "views": 1}))
        assert warehouse.rows("videos_hostile", id="bad")[0]["title"] == title
        return
    # PostgreSQL text cannot hold NUL: the COPY fails, naming the table and the column.
    with pytest.raises(WarehouseError, match=r"videos_hostile.*column title"):
        _load(warehouse, _batch_with({"title": title, "views": 1}))
    assert snapshot(warehouse) == before


UNSTORABLE = [
    # past BIGINT: a computed field such as likes * views can produce one
    pytest.param({"title": "x", "views": 2**63}, id="bigint-overflow"),
    # half a surrogate pair (parse_* refuses it from TikTok; other sources may not)
    pytest.param({"title": "\ud800", "views": 1}, id="lone-surrogate"),
]


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_values_no_database_can_store_fail_the_batch_and_write_nothing(
    warehouse: Warehouse, bad: dict
) -> None:
    _load(warehouse, BEFORE)
    before = snapshot(warehouse)
    with pytest.raises(Exception) as caught:
        _load(warehouse, _batch_with(bad))
    assert snapshot(warehouse) == before
    assert isinstance(caught.value, WarehouseError)
    assert "videos_hostile" in str(caught.value)


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_sqlite_reports_unstorable_values_as_a_warehouse_error(tmp_path: Path, bad: dict) -> None:
    warehouse = Warehouse(make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}"))
    with pytest.raises(WarehouseError, match="videos_hostile"):
        _load(warehouse, _batch_with(bad))

"""Every column of the warehouse schemas shown in the Dagster UI says what it holds and which
TikTok scope it needs; the descriptions come from `resources.tiktok.scopes`, next to the field list.
"""

import dagster as dg
import pytest

from pipelines.definitions import defs
from resources.tiktok import scopes
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.load import LOAD_NAMES

TABLE_COLUMNS = {
    tables.PROFILES: tables.PROFILE_COLUMNS,
    tables.VIDEOS: tables.VIDEO_COLUMNS,
    tables.PROFILE_STATS_DAILY: tables.PROFILE_STATS_COLUMNS,
    tables.VIDEO_METRICS_DAILY: tables.VIDEO_METRICS_COLUMNS,
}
TIKTOK_FIELDS = [
    *(field for fields in scopes.USER_FIELDS_BY_SCOPE.values() for field in fields),
    *scopes.VIDEO_FIELDS,
]


def _ui_schemas() -> dict[str, dg.TableSchema]:
    loaded = defs()
    return {
        spec.key.to_user_string(): spec.metadata["dagster/column_schema"]
        for spec in loaded.resolve_all_asset_specs()
        if "dagster/column_schema" in spec.metadata
    }


def test_every_column_shown_in_the_ui_has_a_description():
    schemas = _ui_schemas()
    # Every warehouse table the sync writes is an asset with its schema (the snapshots included).
    snapshots = {tables.PROFILE_STATS_DAILY, tables.VIDEO_METRICS_DAILY}
    assert {"tiktok_profile", "tiktok_videos", *snapshots} <= set(schemas)
    for table in snapshots:
        assert [c.name for c in schemas[table].columns] == [n for n, _ in TABLE_COLUMNS[table]]
    undescribed = [
        f"{asset}.{column.name}"
        for asset, schema in schemas.items()
        for column in schema.columns
        if not (column.description or "").strip()
    ]
    assert undescribed == []


@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
def test_every_warehouse_column_has_a_description(table):
    names = [name for name, _kind in TABLE_COLUMNS[table]] + list(LOAD_NAMES)
    assert [name for name in names if not scopes.column_description(name)] == []


@pytest.mark.parametrize("field", TIKTOK_FIELDS)
def test_a_tiktok_field_names_the_scope_it_needs(field):
    description = scopes.column_description(field)
    assert description.endswith(f"Scope: {scopes.scope_for(field)}.")
    assert len(description) > len("Scope: video.list.") + 10  # a meaning, not only the scope


def test_user_and_video_fields_do_not_share_a_name():
    # One description per column name: a field in both lists would need two meanings.
    user_fields = set(TIKTOK_FIELDS[: -len(scopes.VIDEO_FIELDS)])
    assert user_fields.isdisjoint(scopes.VIDEO_FIELDS)


def test_an_unknown_column_has_no_made_up_description():
    assert scopes.column_description("not_a_column") == ""

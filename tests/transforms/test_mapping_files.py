"""The mapping files shipped in pipelines/mappings/: each loads, and maps a record shaped like
the extractor's output to what its target expects (warehouse rows, HubSpot strings, Salesforce
fields)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.transforms.builders import ALL_SCOPES, BASIC_ONLY, PROFILE, VIDEO, profile, video
from transforms import apply_mapping, load_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "pipelines" / "mappings"
SHIPPED = sorted(MAPPINGS.glob("*.yaml"))
EXPECTED = [
    # name, source, target kind, target object, key
    ("generic_videos", "video", "generic", "videos", ("video_id",)),
    ("hubspot_contacts", "profile", "hubspot", "contacts", ("tiktok_open_id",)),
    ("salesforce_contacts", "profile", "salesforce", "Contact", ("TikTok_Open_Id__c",)),
    ("warehouse_contacts", "profile", "warehouse", "crm_contacts", ("tiktok_open_id",)),
    ("warehouse_videos", "video", "warehouse", "crm_videos", ("tiktok_video_id",)),
]


def test_every_expected_file_is_shipped() -> None:
    assert [path.stem for path in SHIPPED] == [row[0] for row in EXPECTED]


@pytest.mark.parametrize(("name", "source", "kind", "obj", "key"), EXPECTED)
def test_shipped_file_loads(name: str, source: str, kind: str, obj: str, key: tuple) -> None:
    mapping = load_mapping(MAPPINGS / f"{name}.yaml")
    assert (mapping.name, mapping.source, mapping.target.kind, mapping.target.object) == (
        name,
        source,
        kind,
        obj,
    )
    assert mapping.key == key
    assert mapping.columns[0] == (key[0], "string")
    assert len({column for column, _type in mapping.columns}) == len(mapping.columns)


def test_warehouse_contacts_row() -> None:
    mapping = load_mapping(MAPPINGS / "warehouse_contacts.yaml")
    previous = {(PROFILE["open_id"],): profile(follower_count=124000)}
    result = apply_mapping(mapping, [profile()], ALL_SCOPES, previous)
    assert result.rejected == []
    assert result.records == [
        {
            "tiktok_open_id": PROFILE["open_id"],
            "tiktok_union_id": PROFILE["union_id"],
            "full_name": "Ana Creates",
            "username": "ana.creates",
            "profile_url": "https://www.tiktok.com/@ana.creates",
            "bio": "",
            "is_verified": False,
            "followers": 125000,
            "following": 180,
            "likes": 2400000,
            "videos": 312,
            "connection_name": "ana-main",
            "synced_at": PROFILE["synced_at"],
            "follower_growth": 1000,
        }
    ]


def test_warehouse_contacts_without_optional_scopes() -> None:
    mapping = load_mapping(MAPPINGS / "warehouse_contacts.yaml")
    result = apply_mapping(mapping, [profile()], BASIC_ONLY)
    (row,) = result.records
    assert row["followers"] is None and row["username"] is None and row["profile_url"] is None
    assert result.missing_scopes == {
        "user.info.profile": ("username", "profile_url", "bio", "is_verified"),
        "user.info.stats": ("followers", "following", "likes", "videos", "follower_growth"),
    }


def test_warehouse_videos_row() -> None:
    mapping = load_mapping(MAPPINGS / "warehouse_videos.yaml")
    (row,) = apply_mapping(mapping, [video()], ALL_SCOPES).records
    assert row["tiktok_video_id"] == "7312345123451234512"
    assert row["published_at"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert row["engagement_rate"] == 0.05
    assert row["views_since_last_sync"] is None
    assert row["deleted_at"] is None
    assert row["is_aigc"] is False


def test_hubspot_values_are_all_strings() -> None:
    mapping = load_mapping(MAPPINGS / "hubspot_contacts.yaml")
    assert {type_name for _name, type_name in mapping.columns} == {"string"}
    (row,) = apply_mapping(mapping, [profile()], ALL_SCOPES).records
    assert all(isinstance(value, str) for value in row.values() if value is not None)
    assert row["tiktok_followers"] == "125000"
    assert row["tiktok_is_verified"] == "false"
    assert row["tiktok_last_synced_at"] == "2026-05-26T06:03:34Z"


def test_hubspot_skips_fields_whose_scope_is_missing() -> None:
    mapping = load_mapping(MAPPINGS / "hubspot_contacts.yaml")
    result = apply_mapping(mapping, [profile()], BASIC_ONLY)
    assert result.records == [
        {
            "tiktok_open_id": PROFILE["open_id"],
            "tiktok_display_name": "Ana Creates",
            "tiktok_last_synced_at": "2026-05-26T06:03:34Z",
        }
    ]
    assert result.missing_scopes["user.info.stats"] == (
        "tiktok_followers",
        "tiktok_following",
        "tiktok_likes",
        "tiktok_video_count",
    )


@pytest.mark.parametrize(
    ("display_name", "last_name"),
    [
        # the creator's name, trimmed
        ("  Ana Creates ", "Ana Creates"),
        # blank or absent names fall back, because Salesforce requires LastName
        ("   ", "TikTok creator"),
        (None, "TikTok creator"),
        # Salesforce's LastName holds 80 characters
        ("n" * 100, "n" * 80),
    ],
)
def test_salesforce_last_name(display_name: str | None, last_name: str) -> None:
    mapping = load_mapping(MAPPINGS / "salesforce_contacts.yaml")
    (row,) = apply_mapping(mapping, [profile(display_name=display_name)], ALL_SCOPES).records
    assert row["LastName"] == last_name
    assert row["TikTok_Followers__c"] == 125000


def test_generic_videos_row() -> None:
    mapping = load_mapping(MAPPINGS / "generic_videos.yaml")
    record = video(video_description="line one\r\nline two", is_aigc=None)
    previous = {(VIDEO["id"],): video(view_count=19000)}
    (row,) = apply_mapping(mapping, [record], ALL_SCOPES, previous).records
    assert row["caption"] == "line one\nline two"
    assert row["published_date"] == date(2023, 11, 14)
    assert row["published_month"] == "2023-11"
    assert row["ai_generated"] == "unknown"
    assert row["likes_per_1000_views"] == 45.0
    assert row["views_since_last_sync"] == 1000


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_mappings_survive_pickling(path: Path) -> None:
    # Dagster's multiprocess executor and IO managers pickle what crosses process boundaries.
    mapping = load_mapping(path)
    copy = pickle.loads(pickle.dumps(mapping))
    records = [profile(), video()]
    assert apply_mapping(copy, records, ALL_SCOPES) == apply_mapping(mapping, records, ALL_SCOPES)

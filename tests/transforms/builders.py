"""Records shaped like the TikTok extractor's output, and a small mapping-text builder for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

ALL_SCOPES = frozenset({"user.info.basic", "user.info.profile", "user.info.stats", "video.list"})
BASIC_ONLY = frozenset({"user.info.basic"})
SYNCED_AT = datetime(2026, 5, 26, 6, 3, 34, tzinfo=UTC)

# Field values follow TikTok's documented and recorded responses (docs/tiktok-api.md, sections 3-4):
# open_id is not a UUID, an empty bio comes back as "", is_verified is explicit.
PROFILE: dict[str, Any] = {
    "open_id": "-000sr6ziSORMWi9D4IFqm6ADJtH4KS3gO6e",
    "union_id": "c9c60f44-a68e-4f5d-84dd-ce22faeb0ba1",
    "avatar_url": "https://p19-sign.tiktokcdn-us.com/tos-avt-0068-tx/b17f~c5_168x168.jpeg",
    "display_name": "  Ana Creates ",
    "bio_description": "",
    "profile_deep_link": "https://vm.tiktok.com/ZSxxdj6gy/",
    "is_verified": False,
    "username": "ana.creates",
    "follower_count": 125000,
    "following_count": 180,
    "likes_count": 2400000,
    "video_count": 312,
    "connection_name": "ana-main",
    "synced_at": SYNCED_AT,
}

VIDEO: dict[str, Any] = {
    "id": "7312345123451234512",
    "create_time": 1700000000,
    "cover_image_url": "https://p16-sign.tiktokcdn-us.com/obj/cover.image?x-expires=1659000367",
    "share_url": "https://www.tiktok.com/@ana.creates/video/7312345123451234512?utm_campaign=tt4d_open_api",
    "video_description": "Behind the scenes #studio",
    "duration": 31,
    "height": 1920,
    "width": 1080,
    "title": "Studio day",
    "embed_html": '<blockquote class="tiktok-embed"></blockquote>',
    "embed_link": "https://www.tiktok.com/player/v1/7312345123451234512",
    "like_count": 900,
    "comment_count": 60,
    "share_count": 40,
    "view_count": 20000,
    "is_aigc": False,
    "connection_name": "ana-main",
    "open_id": "-000sr6ziSORMWi9D4IFqm6ADJtH4KS3gO6e",
    "synced_at": SYNCED_AT,
    "deleted_at": None,
}


def profile(**overrides: Any) -> dict[str, Any]:
    """A profile record with some fields replaced."""
    return {**PROFILE, **overrides}


def video(**overrides: Any) -> dict[str, Any]:
    """A video record with some fields replaced."""
    return {**VIDEO, **overrides}


def mapping_text(
    fields: str,
    *,
    source: str = "profile",
    kind: str = "warehouse",
    obj: str = "crm_contacts",
    key: str = "[id_out]",
    computed: str = "",
) -> str:
    """A version-1 mapping whose first field maps the entity's id to the required key ``id_out``."""
    id_field = "open_id" if source == "profile" else "id"
    text = (
        "version: 1\n"
        "name: test_mapping\n"
        f"source: {source}\n"
        "target:\n"
        f"  kind: {kind}\n"
        f"  object: {obj}\n"
        f"key: {key}\n"
        "fields:\n"
        f"  - source: {id_field}\n"
        "    target: id_out\n"
        "    type: string\n"
        "    required: true\n"
    )
    text += fields
    if computed:
        text += "computed:\n" + computed
    return text

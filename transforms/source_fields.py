"""What the TikTok extractor emits per source entity, and which OAuth scope unlocks each field."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_BASIC = "user.info.basic"
_PROFILE = "user.info.profile"
_STATS = "user.info.stats"
_VIDEO = "video.list"

_PROFILE_FIELDS: dict[str, str | None] = {
    "open_id": _BASIC,
    "union_id": _BASIC,
    "avatar_url": _BASIC,
    "avatar_url_100": _BASIC,
    "avatar_large_url": _BASIC,
    "display_name": _BASIC,
    "bio_description": _PROFILE,
    "profile_deep_link": _PROFILE,
    "is_verified": _PROFILE,
    "username": _PROFILE,
    "follower_count": _STATS,
    "following_count": _STATS,
    "likes_count": _STATS,
    "video_count": _STATS,
    # Added by the pipeline, not by TikTok: always present whatever the user granted.
    "connection_name": None,
    "synced_at": None,
}

_VIDEO_FIELDS: dict[str, str | None] = {
    **dict.fromkeys(
        (
            "id",
            "create_time",
            "cover_image_url",
            "share_url",
            "video_description",
            "duration",
            "height",
            "width",
            "title",
            "embed_html",
            "embed_link",
            "like_count",
            "comment_count",
            "share_count",
            "view_count",
            "is_aigc",
        ),
        _VIDEO,
    ),
    "connection_name": None,
    "open_id": None,
    "synced_at": None,
    "deleted_at": None,
}

# source entity -> field -> scope that must be granted for TikTok to return it (None: always there).
SOURCE_FIELD_SCOPES: Mapping[str, Mapping[str, str | None]] = MappingProxyType(
    {
        "profile": MappingProxyType(_PROFILE_FIELDS),
        "video": MappingProxyType(_VIDEO_FIELDS),
    }
)

# Scopes a mapping may name explicitly (TikTok's scope table; user.info.username: QR login).
KNOWN_SCOPES: frozenset[str] = frozenset(
    {_BASIC, _PROFILE, _STATS, _VIDEO, "user.info.username", "video.publish", "video.upload"}
)

FIELD_TYPES: tuple[str, ...] = ("boolean", "date", "datetime", "float", "integer", "json", "string")
TARGET_KINDS: tuple[str, ...] = ("generic", "hubspot", "salesforce", "warehouse")
SCOPE_POLICIES: tuple[str, ...] = ("null", "reject", "skip")

"""Which fields each OAuth scope unlocks (tiktok-api.md section 2 and 3).

Requesting a field without its scope is answered with `scope_permission_missed`, so the client
asks only for what the connection's granted scopes allow.
"""

from __future__ import annotations

BASIC = "user.info.basic"
PROFILE = "user.info.profile"
STATS = "user.info.stats"
VIDEO_LIST = "video.list"

#: Scopes this pipeline can use; `user.info.basic` is always requested.
SUPPORTED_SCOPES = (BASIC, PROFILE, STATS, VIDEO_LIST)

USER_FIELDS_BY_SCOPE: dict[str, tuple[str, ...]] = {
    BASIC: (
        "open_id",
        "union_id",
        "avatar_url",
        "avatar_url_100",
        "avatar_large_url",
        "display_name",
    ),
    PROFILE: ("bio_description", "profile_deep_link", "is_verified", "username"),
    STATS: ("follower_count", "following_count", "likes_count", "video_count"),
}

VIDEO_FIELDS: tuple[str, ...] = (
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
)
# /v2/video/query/ documents only the 15 older fields (tiktok-api.md section 4): `is_aigc` is
# left out there, so a query never fails on it, and refreshed rows keep their stored value.
QUERY_FIELDS: tuple[str, ...] = tuple(name for name in VIDEO_FIELDS if name != "is_aigc")


def parse_scopes(raw: str | list[str] | tuple[str, ...] | frozenset[str] | None) -> frozenset[str]:
    """Scopes as TikTok sends them (comma-separated) or as a list, normalised to a set."""
    if raw is None:
        return frozenset()
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return frozenset(item.strip() for item in items if item and item.strip())


def user_fields_for(scopes: frozenset[str]) -> tuple[str, ...]:
    """The user-info fields the granted scopes allow, in documentation order."""
    return tuple(
        field
        for scope, fields in USER_FIELDS_BY_SCOPE.items()
        if scope == BASIC or scope in scopes
        for field in fields
    )


def missing_user_scopes(scopes: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Scope -> the user fields left empty because that scope was not granted."""
    return {
        scope: fields
        for scope, fields in USER_FIELDS_BY_SCOPE.items()
        if scope != BASIC and scope not in scopes
    }

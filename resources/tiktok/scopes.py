"""Which fields each OAuth scope unlocks (tiktok-api.md section 2 and 3).

Requesting a field without its scope is answered with `scope_permission_missed`, so the client
asks only for what the connection's granted scopes allow.
"""

from __future__ import annotations

import dataclasses

from resources.tiktok.models import TikTokVideo

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

# The fields asked of /v2/video/list/: every field of the parsed video, in its order.
VIDEO_FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(TikTokVideo))
# /v2/video/query/ documents only the 15 older fields (tiktok-api.md section 4): `is_aigc` is
# left out there, so a query never fails on it, and refreshed rows keep their stored value.
QUERY_FIELDS: tuple[str, ...] = tuple(name for name in VIDEO_FIELDS if name != "is_aigc")

# What each field means (tiktok-api.md sections 3 and 4), shown as the column description of the
# warehouse tables in the Dagster UI; `column_description` adds the scope the field needs.
FIELD_DESCRIPTIONS: dict[str, str] = {
    "open_id": "The TikTok user's id, unique within this app (not a UUID; the same user has "
    "another open_id in another app). In tiktok_videos, the user who posted the video.",
    "union_id": "The TikTok user's id shared by all apps of the same developer.",
    "avatar_url": "Profile image URL (signed by TikTok's CDN; expires after about 2 days).",
    "avatar_url_100": "Profile image URL, 100x100 pixels (signed; expires after about 2 days).",
    "avatar_large_url": "Profile image URL, large (signed; expires after about 2 days).",
    "display_name": "The profile name shown on TikTok.",
    "bio_description": "The profile's bio; an empty string when the user wrote none.",
    "profile_deep_link": "Short link to the profile page; changes from call to call, never a key.",
    "is_verified": "Whether the account has TikTok's verified badge.",
    "username": "The account's @username.",
    "follower_count": "Followers of the account.",
    "following_count": "Accounts this account follows.",
    "likes_count": "Likes received across all of the account's videos.",
    "video_count": "Videos the account has posted publicly.",
    "id": "The video's id (TikTok's item_id): a 19-digit number kept as text.",
    "create_time": "When the video was posted, in UTC Unix epoch seconds.",
    "cover_image_url": "Cover image URL on TikTok's CDN; valid for 6 hours after the sync.",
    "share_url": "Shareable link to the video on tiktok.com.",
    "video_description": "The creator's description of the video (at most 150 characters).",
    "duration": "Length of the video in seconds.",
    "height": "Height of the video in pixels.",
    "width": "Width of the video in pixels.",
    "title": "The video's title (at most 150 characters).",
    "embed_html": "HTML that embeds the video in a web page.",
    "embed_link": "Link to the embeddable video player on tiktok.com.",
    "like_count": "Likes the video has received.",
    "comment_count": "Comments on the video.",
    "share_count": "Times the video was shared.",
    "view_count": "Times the video was viewed.",
    "is_aigc": "Whether TikTok labels the video as AI-generated content (newer field; absent "
    "from /v2/video/query/, so refreshed rows keep the value stored by the list call).",
}
# Columns the pipeline adds to the warehouse tables: what they hold and what they depend on.
PIPELINE_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "connection_name": "The connection (one authorized TikTok account) the row was synced for; "
    "needs no scope.",
    "video_id": f"The video's id, as `id` in tiktok_videos. Scope: {VIDEO_LIST}.",
    "snapshot_date": "The day (UTC) the counts were read from TikTok; one row per day; "
    "needs no scope.",
    "missing_scopes": "Comma-separated scopes the user did not grant, whose fields are left "
    "empty in this row; empty when every supported scope was granted. Needs no scope.",
    "deleted_at": "When a full video sync no longer found the video on TikTok (deleted or made "
    f"private); empty while it is live. Scope: {VIDEO_LIST}.",
    "_synced_at": "When this row was last written by the pipeline (UTC); needs no scope.",
    "_load_id": "Id of the load (one upsert) that last wrote this row, to trace it to a run; "
    "needs no scope.",
}


def scope_for(field: str) -> str | None:
    """The scope a TikTok field needs, or None for a column the pipeline adds."""
    for scope, fields in USER_FIELDS_BY_SCOPE.items():
        if field in fields:
            return scope
    return VIDEO_LIST if field in VIDEO_FIELDS else None


def column_description(column: str) -> str:
    """What a warehouse column holds and which scope it needs; empty for an unknown column."""
    if column in PIPELINE_COLUMN_DESCRIPTIONS:
        return PIPELINE_COLUMN_DESCRIPTIONS[column]
    meaning = FIELD_DESCRIPTIONS.get(column)
    scope = scope_for(column)
    return f"{meaning} Scope: {scope}." if meaning and scope else ""


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

"""Warehouse tables holding what was extracted from TikTok, and pure row builders for them.

Columns keep TikTok's field names, so mapping files address them as documented by TikTok.
"""

import dataclasses
from datetime import date

from resources.tiktok.models import TikTokUser, TikTokVideo
from resources.tiktok.scopes import STATS, USER_FIELDS_BY_SCOPE

PROFILES = "tiktok_profiles"
VIDEOS = "tiktok_videos"
PROFILE_STATS_DAILY = "tiktok_profile_stats_daily"
VIDEO_METRICS_DAILY = "tiktok_video_metrics_daily"

_KINDS = {"str": "string", "int": "integer", "bool": "boolean"}
STATS_FIELDS = USER_FIELDS_BY_SCOPE[STATS]  # the daily snapshot's counters
METRIC_FIELDS = ("like_count", "comment_count", "share_count", "view_count")


def _columns(cls: type) -> list[tuple[str, str]]:
    return [(f.name, _KINDS[str(f.type).split(" ")[0]]) for f in dataclasses.fields(cls)]


PROFILE_COLUMNS = [
    ("connection_name", "string"),
    *_columns(TikTokUser),
    ("missing_scopes", "string"),
]
PROFILE_KEY = ("connection_name", "open_id")
VIDEO_COLUMNS = [
    ("connection_name", "string"),
    ("open_id", "string"),
    *_columns(TikTokVideo),
    ("deleted_at", "datetime"),
]
VIDEO_KEY = ("connection_name", "id")
PROFILE_STATS_COLUMNS = [
    ("connection_name", "string"),
    ("snapshot_date", "date"),
    ("open_id", "string"),
    *[(name, "integer") for name in STATS_FIELDS],
]
PROFILE_STATS_KEY = ("connection_name", "snapshot_date")
VIDEO_METRICS_COLUMNS = [
    ("connection_name", "string"),
    ("video_id", "string"),
    ("snapshot_date", "date"),
    *[(name, "integer") for name in METRIC_FIELDS],
]
VIDEO_METRICS_KEY = ("connection_name", "video_id", "snapshot_date")


def profile_row(connection_name: str, user: TikTokUser, missing: dict[str, tuple]) -> dict:
    return {
        "connection_name": connection_name,
        **dataclasses.asdict(user),
        "missing_scopes": ",".join(sorted(missing)) or None,
    }


def profile_stats_row(connection_name: str, user: TikTokUser, day: date) -> dict:
    stats = {name: getattr(user, name) for name in STATS_FIELDS}
    return {
        "connection_name": connection_name,
        "snapshot_date": day,
        "open_id": user.open_id,
    } | stats


def video_row(connection_name: str, open_id: str, video: TikTokVideo) -> dict:
    # A video seen again is live again: clear a deletion mark from an earlier full sync.
    row = {"connection_name": connection_name, "open_id": open_id, **dataclasses.asdict(video)}
    return row | {"deleted_at": None}


def video_metrics_row(connection_name: str, video: TikTokVideo, day: date) -> dict:
    metrics = {name: getattr(video, name) for name in METRIC_FIELDS}
    return {
        "connection_name": connection_name,
        "video_id": video.id,
        "snapshot_date": day,
    } | metrics

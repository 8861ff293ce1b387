"""Frozen dataclasses for what the Display API returns, parsed strictly at the boundary.

Parsing checks each documented field's JSON type (a count sent as "12" or an `id` sent as a number
is a contract violation, named by field) and ignores fields TikTok adds later. Absent fields
are None: TikTok returns only the fields that were requested and that the granted scopes allow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from resources.tiktok.errors import ContractViolation

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str | None": (str,),
    "int | None": (int,),
    "bool | None": (bool,),
}


@dataclass(frozen=True, slots=True)
class TikTokUser:
    open_id: str
    union_id: str | None = None
    avatar_url: str | None = None
    avatar_url_100: str | None = None
    avatar_large_url: str | None = None
    display_name: str | None = None
    bio_description: str | None = None
    profile_deep_link: str | None = None
    is_verified: bool | None = None
    username: str | None = None
    follower_count: int | None = None
    following_count: int | None = None
    likes_count: int | None = None
    video_count: int | None = None


@dataclass(frozen=True, slots=True)
class TikTokVideo:
    id: str
    create_time: int
    cover_image_url: str | None = None
    share_url: str | None = None
    video_description: str | None = None
    duration: int | None = None
    height: int | None = None
    width: int | None = None
    title: str | None = None
    embed_html: str | None = None
    embed_link: str | None = None
    like_count: int | None = None
    comment_count: int | None = None
    share_count: int | None = None
    view_count: int | None = None
    is_aigc: bool | None = None


@dataclass(frozen=True, slots=True)
class VideoPage:
    videos: tuple[TikTokVideo, ...]
    cursor: int
    has_more: bool


def _check(value: Any, expected: tuple[type, ...], where: str) -> Any:
    # bool is a subclass of int in Python; a JSON `true` is never a valid count.
    wrong_bool = isinstance(value, bool) and bool not in expected
    if value is not None and (wrong_bool or not isinstance(value, expected)):
        raise ContractViolation(
            f"{where}: expected {'/'.join(t.__name__ for t in expected)}, "
            f"got {type(value).__name__}"
        )
    # TikTok's numbers are int64 at most; a bigger one would fail later, in the warehouse.
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        raise ContractViolation(f"{where}: number out of TikTok's int64 range")
    # JSON may escape half a surrogate pair ("\ud800"): text no database can store as UTF-8.
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ContractViolation(
                f"{where}: text is not valid Unicode (lone surrogate at {err.start})"
            ) from None
    return value


def _parse(cls: type, payload: Any, where: str) -> Any:
    if not isinstance(payload, dict):
        raise ContractViolation(f"{where}: expected an object, got {type(payload).__name__}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        expected = _JSON_TYPES.get(str(field.type), (str,) if field.type == "str" else (int,))
        value = _check(payload.get(field.name), expected, f"{where}.{field.name}")
        if value is None and field.default is dataclasses.MISSING:
            raise ContractViolation(f"{where}.{field.name}: required field is missing")
        values[field.name] = value
    return cls(**values)


def parse_user(payload: Any) -> TikTokUser:
    return _parse(TikTokUser, payload, "data.user")


def parse_video(payload: Any, index: int = 0) -> TikTokVideo:
    return _parse(TikTokVideo, payload, f"data.videos[{index}]")


def parse_video_page(data: Any) -> VideoPage:
    """`data` of /v2/video/list/ or /v2/video/query/ (query may omit cursor and has_more)."""
    if not isinstance(data, dict):
        raise ContractViolation(f"data: expected an object, got {type(data).__name__}")
    videos = _check(data.get("videos", []), (list,), "data.videos")
    cursor = _check(data.get("cursor", 0), (int,), "data.cursor")
    has_more = _check(data.get("has_more", False), (bool,), "data.has_more")
    return VideoPage(
        videos=tuple(parse_video(item, i) for i, item in enumerate(videos or [])),
        cursor=cursor or 0,
        has_more=bool(has_more),
    )

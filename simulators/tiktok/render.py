"""JSON objects for users and videos, shaped field for field like tiktok-api.md sections 3 and 4.

Counts grow with the injected clock (so a dashboard shows a trend) and signed CDN URLs expire
relative to it (so code that stores them as durable links is caught).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from urllib.parse import quote

from simulators.tiktok.data import DAY_SECONDS, Catalog, SimAccount, days_since_anchor
from simulators.tiktok.text import seeded_hex, seeded_int
from simulators.tiktok.videos import NO_CHANGES, AccountVideos, Changes

USER_FIELD_SCOPES: Mapping[str, str] = {
    "open_id": "user.info.basic",
    "union_id": "user.info.basic",
    "avatar_url": "user.info.basic",
    "avatar_url_100": "user.info.basic",
    "avatar_large_url": "user.info.basic",
    "display_name": "user.info.basic",
    "bio_description": "user.info.profile",
    "profile_deep_link": "user.info.profile",
    "is_verified": "user.info.profile",
    "username": "user.info.profile",
    "follower_count": "user.info.stats",
    "following_count": "user.info.stats",
    "likes_count": "user.info.stats",
    "video_count": "user.info.stats",
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
# Used only when video_list_requires_fields is off (section 12.10).
DEFAULT_VIDEO_FIELDS: tuple[str, ...] = ("id", "create_time", "title", "cover_image_url")
CAPTION_FIELDS = frozenset({"title", "video_description", "embed_html"})
LINK_FIELDS = frozenset({"cover_image_url", "share_url", "embed_link"})
SHAPE_FIELDS = frozenset({"duration", "height", "width", "is_aigc"})
METRIC_FIELDS = frozenset({"like_count", "comment_count", "share_count", "view_count"})

AVATAR_TTL_SECONDS = 2 * 86_400  # recorded avatar links expired about two days after the call
COVER_TTL_SECONDS = 6 * 3_600  # documented cover_image_url TTL
DEEP_LINK_BUCKET_SECONDS = 600  # recorded deep links changed between calls minutes apart
AVATAR_HOST = "https://p19-sign.tiktokcdn-us.com"
COVER_HOST = "https://p16-sign-va.tiktokcdn-us.com"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIMENSIONS: tuple[tuple[int, int], ...] = ((1080, 1920), (720, 1280), (1920, 1080), (1080, 1080))


def _signed(seed: int, host: str, path: str, expires: int) -> str:
    signature = seeded_hex(seed, "sig", path, expires)
    return f"{host}{path}?x-expires={expires}&x-signature={signature}"


def _short_code(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(BASE62))
        chars.append(BASE62[digit])
    return "".join(chars)


def user_object(account: SimAccount, video_count: int, now: float, seed: int) -> dict[str, object]:
    """All 14 user fields; the caller keeps only the requested ones."""
    days = days_since_anchor(now)
    avatar_path = f"/tos-avt-0068-tx/{seeded_hex(seed, 'avatar', account.index)}"
    expires = int(now) + AVATAR_TTL_SECONDS
    link_code = _short_code(
        seeded_int(seed, "deeplink", account.index, int(now) // DEEP_LINK_BUCKET_SECONDS), 7
    )
    return {
        "open_id": account.open_id,
        "union_id": account.union_id,
        "avatar_url": _signed(seed, AVATAR_HOST, f"{avatar_path}~c5_168x168.jpeg", expires),
        "avatar_url_100": _signed(seed, AVATAR_HOST, f"{avatar_path}~c5_100x100.jpeg", expires),
        "avatar_large_url": _signed(seed, AVATAR_HOST, f"{avatar_path}~c5_1080x1080.jpeg", expires),
        "display_name": account.display_name,
        "bio_description": account.bio_description,
        "profile_deep_link": f"https://vm.tiktok.com/ZS{link_code}/",
        "is_verified": account.is_verified,
        "username": account.username,
        "follower_count": account.follower_base + account.follower_daily_growth * days,
        "following_count": account.following_base + days // 3,
        "likes_count": account.likes_base + account.likes_daily_growth * days,
        "video_count": video_count,
    }


def _metrics(
    seed: int, account: int, index: int, now: float, posted_at: int | None = None
) -> dict[str, int]:
    roll = seeded_int(seed, "views", account, index)
    if posted_at is None:  # generated: it predates the anchor and grows per day since then
        base_views = 100 + roll % 400_000
        if roll % 37 == 0:  # the occasional viral video
            base_views *= 25
        views = base_views + (base_views // 150 + 1) * days_since_anchor(now)
    else:  # posted later: a first day's views, then a tenth of that per whole day since posting
        first_day = 50 + roll % 20_000
        if roll % 37 == 0:
            first_day *= 25
        days = max(0, int(now - posted_at) // DAY_SECONDS)
        views = first_day + (first_day // 10 + 1) * days
    likes = views * (2 + roll % 11) // 100
    return {
        "like_count": likes,
        "comment_count": likes * (1 + roll % 5) // 100,
        "share_count": likes * (1 + roll % 8) // 100,
        "view_count": views,
    }


def video_object(
    catalog: Catalog,
    account: SimAccount,
    index: int,
    now: float,
    client_key: str,
    fields: tuple[str, ...] = VIDEO_FIELDS,
    changes: Changes = NO_CHANGES,
) -> dict[str, object]:
    """The requested video fields, in request order; only the groups asked for are computed.

    `changes` are the account's posts and caption edits (`SimState.videos`); without them only
    generated videos exist, with their generated captions.
    """
    seed, wanted = catalog.seed, frozenset(fields)
    videos = AccountVideos(catalog, account.index, changes)
    video_id = videos.video_id(index)
    create_time = videos.create_time(index)
    video: dict[str, object] = {"id": video_id, "create_time": create_time}
    watch = f"https://www.tiktok.com/@{account.username}/video/{video_id}"
    if wanted & CAPTION_FIELDS:
        title, description = videos.caption(index)
        video.update(title=title, video_description=description)
        video["embed_html"] = _embed_html(account.username, video_id, watch, title)
    if wanted & LINK_FIELDS:
        cover_path = f"/obj/tos-maliva-p-0068/{seeded_hex(seed, 'cover', video_id)}"
        cover_path += "~tplv-noop.image"
        expires = int(now) + COVER_TTL_SECONDS
        utm = f"utm_campaign=tt4d_open_api&utm_source={quote(client_key, safe='')}"
        video["cover_image_url"] = _signed(seed, COVER_HOST, cover_path, expires)
        video["share_url"] = f"{watch}?{utm}"
        embed = f"https://www.tiktok.com/static/profile-video?id={video_id}&hide_author=1"
        video["embed_link"] = f"{embed}&{utm}"
    if wanted & SHAPE_FIELDS:
        roll = seeded_int(seed, "shape", account.index, index)
        width, height = DIMENSIONS[roll % len(DIMENSIONS)]
        video.update(duration=5 + roll % 176, height=height, width=width, is_aigc=roll % 11 == 0)
    if wanted & METRIC_FIELDS:
        posted_at = create_time if videos.is_posted(index) else None
        video.update(_metrics(seed, account.index, index, now, posted_at))
    return {name: video[name] for name in fields}


def _embed_html(username: str, video_id: str, watch: str, title: str) -> str:
    profile = f"https://www.tiktok.com/@{username}?refer=embed"
    return (
        f'<blockquote class="tiktok-embed" cite="{watch}" data-video-id="{video_id}" '
        f'style="max-width: 605px;min-width: 325px;" > <section> <a target="_blank" '
        f'title="@{username}" href="{profile}">@{username}</a> '
        f"{html.escape(title)} </section> </blockquote> "
        '<script async src="https://www.tiktok.com/embed.js"></script>'
    )

"""Scope-aware extraction for one connection: what to ask TikTok for, given what was granted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import ScopeMissing
from resources.tiktok.models import TikTokUser, TikTokVideo
from resources.tiktok.pagination import PageWalk
from resources.tiktok.scopes import VIDEO_FIELDS, VIDEO_LIST, missing_user_scopes, user_fields_for


@dataclass(frozen=True)
class ProfileExtract:
    user: TikTokUser
    missing_scopes: dict[str, tuple[str, ...]]  # scope -> fields left empty


def extract_profile(client: TikTokClient, scopes: frozenset[str]) -> ProfileExtract:
    user = client.get_user(user_fields_for(scopes))
    return ProfileExtract(user=user, missing_scopes=missing_user_scopes(scopes))


def extract_videos(
    client: TikTokClient, scopes: frozenset[str], walk: PageWalk
) -> Iterator[TikTokVideo]:
    """All published videos, newest first; raises ScopeMissing when `video.list` was not granted."""
    if VIDEO_LIST not in scopes:
        raise ScopeMissing(
            "the connection did not grant `video.list`; reconnect it with that scope to sync "
            "videos",
            endpoint="video_list",
            code="scope_not_granted",
        )
    yield from client.iter_videos(VIDEO_FIELDS, walk=walk)

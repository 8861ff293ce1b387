"""Scope-aware extraction for one connection: what to ask TikTok for, given what was granted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import ContractViolation, ScopeMissing
from resources.tiktok.models import TikTokUser, TikTokVideo
from resources.tiktok.pagination import PageWalk
from resources.tiktok.scopes import (
    BASIC,
    QUERY_FIELDS,
    USER_FIELDS_BY_SCOPE,
    VIDEO_FIELDS,
    VIDEO_LIST,
    missing_user_scopes,
    user_fields_for,
)


@dataclass(frozen=True)
class ProfileExtract:
    user: TikTokUser
    missing_scopes: dict[str, tuple[str, ...]]  # scope -> fields left empty
    reason: str | None = None  # why scopes are missing, when TikTok said so itself


def extract_profile(client: TikTokClient, scopes: frozenset[str]) -> ProfileExtract:
    """The profile with every field the grant allows; a refused scope leaves its fields empty.

    The stored scopes can be out of date (the user may have withdrawn one since); TikTok then
    answers `scope_permission_missed`, and the profile is read again with the basic fields only.
    """
    try:
        user = client.get_user(user_fields_for(scopes))
    except ScopeMissing as err:
        if scopes <= {BASIC}:
            raise
        user = client.get_user(USER_FIELDS_BY_SCOPE[BASIC])
        refused = {s: fields for s, fields in USER_FIELDS_BY_SCOPE.items() if s != BASIC}
        return ProfileExtract(user, refused, reason=f"TikTok refused the extra fields ({err.code})")
    return ProfileExtract(user=user, missing_scopes=missing_user_scopes(scopes))


def require_video_scope(scopes: frozenset[str]) -> None:
    if VIDEO_LIST not in scopes:
        raise ScopeMissing(
            "the connection did not grant `video.list`; reconnect it with that scope to sync "
            "videos",
            endpoint="video_list",
            code="scope_not_granted",
        )


def extract_videos(
    client: TikTokClient, scopes: frozenset[str], walk: PageWalk
) -> Iterator[TikTokVideo]:
    """Published videos newest first, streamed; raises ScopeMissing without `video.list`.

    Ends with ContractViolation when the walk stopped abnormally (a looping cursor, endless empty
    pages, the page cap): the caller's transaction then rolls back, so no gap is ever stored.
    """
    require_video_scope(scopes)
    yield from client.iter_videos(VIDEO_FIELDS, walk=walk)
    if not walk.complete:
        raise ContractViolation(
            f"video_list: pagination stopped early ({walk.stop_reason}) after {walk.pages} pages; "
            "TikTok's cursor did not lead to the end of the list, so nothing from this run was "
            "stored. Re-run the partition later",
            endpoint="video_list",
            code=walk.stop_reason,
        )


def refresh_metrics(
    client: TikTokClient, video_ids: Iterable[str]
) -> Iterator[tuple[list[str], list[TikTokVideo]]]:
    """Fresh metrics (and links) of known videos, 20 ids a request: (asked ids, videos found)."""
    yield from client.iter_query_batches(video_ids, QUERY_FIELDS)

"""Display API v2: /user/info/, /video/list/ and /video/query/ (tiktok-api.md sections 3-7).

Each handler returns the `data` object; the app wraps it in the success envelope. Errors are
raised as ApiError so the envelope and the `data` key follow the configured variant.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from simulators.tiktok.auth import Grant
from simulators.tiktok.render import (
    DEFAULT_VIDEO_FIELDS,
    USER_FIELD_SCOPES,
    VIDEO_FIELDS,
    user_object,
    video_object,
)
from simulators.tiktok.responses import (
    ApiError,
    SimRequest,
    access_token_invalid,
    invalid_params,
    rate_limit_exceeded,
)
from simulators.tiktok.state import SimState
from simulators.tiktok.videos import AccountVideos

DEFAULT_MAX_COUNT = 10
MAX_PAGE_SIZE = 20
MAX_QUERY_IDS = 20
VIDEO_SCOPE = "video.list"
SCOPE_NOT_AUTHORIZED = "The user did not authorize the scope required for completing this request."

Page = tuple[tuple[int, ...], int, bool]  # (video indexes, response cursor in ms, has_more)


def authenticate(state: SimState, request: SimRequest, now: float) -> tuple[Grant, str]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    found = state.auth.authenticate(token.strip(), now) if scheme.lower() == "bearer" else None
    if found is None:
        raise access_token_invalid()
    return found


def admit(state: SimState, endpoint: str, caller: tuple[Grant, str], now: float) -> None:
    """Count the call in its endpoint's window: per client key ("app") or per access token."""
    config = state.config
    grant, token = caller
    key = grant.client_key if config.rate_limit_key == "app" else token
    if not state.rate.admit(endpoint, key, now, config.rate_limit_per_minute):
        raise rate_limit_exceeded()


def requested_fields(
    request: SimRequest, known: Collection[str], default: tuple[str, ...] | None
) -> tuple[str, ...]:
    raw = request.query.get("fields", "")
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not names:
        if default is None:
            raise invalid_params("The fields parameter is required.")
        return default
    unknown = [name for name in names if name not in known]
    if unknown:
        raise invalid_params(f"Invalid fields: {','.join(unknown)}.")
    return names


def _json_body(request: SimRequest) -> dict[str, object]:
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except ValueError as err:
        raise invalid_params("The request body is not valid JSON.") from err
    if not isinstance(body, dict):
        raise invalid_params("The request body must be a JSON object.")
    return body


def _optional_int(body: dict[str, object], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_params(f"{name} must be an integer.")
    return value


def user_info(state: SimState, request: SimRequest, now: float, fault: str | None) -> object:
    caller = authenticate(state, request, now)
    admit(state, "user_info", caller, now)
    grant = caller[0]
    fields = requested_fields(request, USER_FIELD_SCOPES, None)
    missing = sorted({USER_FIELD_SCOPES[name] for name in fields} - set(grant.scopes))
    if missing:
        message = f"Some fields need additional scopes: {','.join(missing)}."
        raise ApiError(400, "scope_permission_missed", message)
    account = state.catalog.accounts[grant.account]
    full = user_object(account, state.visible_count(grant.account), now, state.config.seed)
    return {"user": {name: full[name] for name in fields}}


def _page(videos: AccountVideos, cursor: int | None, size: int, fault: str | None) -> Page:
    """Walks positions (posted videos first, then the generated timeline); returns indexes."""
    start = videos.start(cursor)
    if fault == "duplicate_items":
        earlier = videos.rewind(start, max(1, size // 2))
        positions, has_more = videos.collect(earlier, size)
        if earlier == start:  # first page: nothing earlier to repeat, so repeat within it
            positions += positions[:1]
    else:
        positions, has_more = videos.collect(start, size)
    if fault == "empty_page_has_more":
        bound = 1
        if cursor:
            bound = cursor
        elif positions:
            bound = (videos.time_at(positions[0]) + 1) * 1000
        # One millisecond earlier skips no video: create_times are whole seconds.
        return (), max(bound - 1, 0), True
    if fault == "short_page" and len(positions) > 1:
        positions, has_more = positions[: len(positions) // 2], True
    if not positions:
        return (), 0, False
    indexes = tuple(videos.index_at(position) for position in positions)
    if fault == "cursor_loop":
        return indexes, cursor or 0, True
    return indexes, videos.time_at(max(positions)) * 1000, has_more


def video_list(state: SimState, request: SimRequest, now: float, fault: str | None) -> object:
    caller = authenticate(state, request, now)
    admit(state, "video_list", caller, now)
    grant = caller[0]
    if VIDEO_SCOPE not in grant.scopes:
        raise ApiError(401, "scope_not_authorized", SCOPE_NOT_AUTHORIZED)
    required = state.config.video_list_requires_fields
    fields = requested_fields(request, VIDEO_FIELDS, None if required else DEFAULT_VIDEO_FIELDS)
    body = _json_body(request)
    cursor = _optional_int(body, "cursor")
    size = _optional_int(body, "max_count")
    size = DEFAULT_MAX_COUNT if size is None else size
    if cursor is not None and cursor < 0:
        raise invalid_params("cursor must not be negative.")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid_params(f"max_count must be between 1 and {MAX_PAGE_SIZE}.")
    videos = state.videos(grant.account)
    # cursor 0 or absent means "from the newest", as clients send 0 on the first page.
    indexes, next_cursor, has_more = _page(videos, cursor, size, fault)
    catalog, changes = videos.catalog, videos.changes
    account = catalog.accounts[grant.account]
    return {
        "videos": [
            video_object(catalog, account, i, now, grant.client_key, fields, changes)
            for i in indexes
        ],
        "cursor": next_cursor,
        "has_more": has_more,
    }


def video_query(state: SimState, request: SimRequest, now: float, fault: str | None) -> object:
    caller = authenticate(state, request, now)
    admit(state, "video_query", caller, now)
    grant = caller[0]
    if VIDEO_SCOPE not in grant.scopes:
        raise ApiError(401, "scope_not_authorized", SCOPE_NOT_AUTHORIZED)
    fields = requested_fields(request, VIDEO_FIELDS, None)
    filters = _json_body(request).get("filters")
    video_ids = filters.get("video_ids") if isinstance(filters, dict) else None
    if not isinstance(video_ids, list):
        raise invalid_params("filters.video_ids is required.")
    if len(video_ids) > MAX_QUERY_IDS:
        raise invalid_params(f"At most {MAX_QUERY_IDS} video_ids are allowed.")
    videos = state.videos(grant.account)
    catalog, changes = videos.catalog, videos.changes
    account = catalog.accounts[grant.account]
    found = []
    for video_id in dict.fromkeys(str(v) for v in video_ids if isinstance(v, str | int)):
        index = videos.decode(video_id)
        # Foreign, unknown and deleted ids are silently left out, as TikTok does (200 ok).
        if index is not None and videos.visible(index):
            found.append(
                video_object(catalog, account, index, now, grant.client_key, fields, changes)
            )
    return {"videos": found, "cursor": 0, "has_more": False}

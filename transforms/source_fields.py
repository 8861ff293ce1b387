"""What the TikTok extractor emits per source entity, and which OAuth scope unlocks each field."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from resources.crm.presets import crm_kinds
from resources.tiktok.scopes import (
    SUPPORTED_SCOPES,
    USER_FIELDS_BY_SCOPE,
    VIDEO_FIELDS,
    VIDEO_LIST,
)

# TikTok's own fields and scopes come from the client's table, so the two can never disagree.
_PROFILE_FIELDS: dict[str, str | None] = {
    **{field: scope for scope, fields in USER_FIELDS_BY_SCOPE.items() for field in fields},
    # Added by the pipeline, not by TikTok: always present whatever the user granted.
    "connection_name": None,
    "synced_at": None,
}

_VIDEO_FIELDS: dict[str, str | None] = {
    **dict.fromkeys(VIDEO_FIELDS, VIDEO_LIST),
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
    {*SUPPORTED_SCOPES, "user.info.username", "video.publish", "video.upload"}
)

FIELD_TYPES: tuple[str, ...] = ("boolean", "date", "datetime", "float", "integer", "json", "string")
WAREHOUSE = "warehouse"


def target_kinds() -> tuple[str, ...]:
    """The warehouse and every CRM preset (read per call: a preset added later counts)."""
    return tuple(sorted({WAREHOUSE, *crm_kinds()}))


SCOPE_POLICIES: tuple[str, ...] = ("null", "reject", "skip")

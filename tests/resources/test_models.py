"""Parsing Display API objects into frozen dataclasses: types checked, new fields tolerated."""

import pytest

from resources.tiktok.errors import ContractViolation
from resources.tiktok.models import parse_user, parse_video, parse_video_page

VIDEO = {
    "id": "7301234567890123456",
    "create_time": 1767225600,
    "title": "Café ☕ 東京",
    "like_count": 12,
    "view_count": 99_000_000_000,
    "is_aigc": False,
}


def test_video_id_stays_a_string_and_new_fields_are_ignored():
    parsed = parse_video(VIDEO | {"field_added_in_2027": {"x": 1}})
    assert parsed.id == "7301234567890123456"
    assert parsed.view_count == 99_000_000_000
    assert parsed.is_aigc is False


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (VIDEO | {"id": 7301234567890123456}, "id"),  # a number would lose precision
        (VIDEO | {"like_count": "12"}, "like_count"),
        (VIDEO | {"like_count": True}, "like_count"),
        (VIDEO | {"is_aigc": "false"}, "is_aigc"),
        ({k: v for k, v in VIDEO.items() if k != "create_time"}, "create_time"),
    ],
)
def test_wrong_types_name_the_field(payload, field):
    with pytest.raises(ContractViolation, match=field):
        parse_video(payload)


def test_user_with_empty_bio_and_only_basic_fields():
    user = parse_user({"open_id": "-000sr6ziSORMWi9D4IFqm6ADJtH4KS3gO6e", "bio_description": ""})
    assert user.bio_description == "" and user.follower_count is None


def test_query_page_without_cursor_or_has_more():
    page = parse_video_page({"videos": [VIDEO]})
    assert (len(page.videos), page.cursor, page.has_more) == (1, 0, False)


def test_videos_must_be_a_list():
    with pytest.raises(ContractViolation, match=r"data\.videos"):
        parse_video_page({"videos": "[]", "cursor": 0, "has_more": False})

"""Hard stops of a /v2/video/list/ page walk (tiktok-api.md section 4 and 12.9).

Pages are fed in the order TikTok would answer successive requests; the walk decides the cursor
of the next request, whether an anomalous page is asked for again, and whether it saw everything.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resources.tiktok import pagination
from resources.tiktok.models import TikTokVideo, VideoPage
from resources.tiktok.pagination import MAX_EMPTY_PAGES, PAGE_REPEATS, PageWalk, SeenIds


def video(video_id: int, create_time: int | None = None) -> TikTokVideo:
    return TikTokVideo(
        id=str(7_300_000_000_000_000_000 + video_id), create_time=create_time or video_id
    )


def page(ids: list[int], cursor: int, has_more: bool = True) -> VideoPage:
    return VideoPage(videos=tuple(video(i) for i in ids), cursor=cursor, has_more=has_more)


def walk_all(pages: list[VideoPage], **kwargs) -> tuple[list[str], PageWalk]:
    """Feed `pages` in order, as TikTok answers successive requests, sending `next_cursor`."""
    walk, seen, requested = PageWalk(**kwargs), [], None
    for item in pages:
        seen.extend(v.id for v in walk.accept(item, requested=requested))
        if walk.stopped:
            break
        requested = walk.next_cursor
    return seen, walk


def test_stops_when_has_more_is_false():
    ids, walk = walk_all([page([9, 8], 8000), page([7], 7000, has_more=False), page([1], 1)])
    assert len(ids) == 3
    assert (walk.pages, walk.stop_reason, walk.complete) == (2, "has_more_false", True)


def test_a_repeated_cursor_is_asked_again_once_and_the_walk_recovers():
    pages = [page([9, 8], 8000), page([7], 8000), page([7, 6], 6000, has_more=False)]
    ids, walk = walk_all(pages)
    assert walk.complete and walk.repeated_pages == 1
    assert len(ids) == len(set(ids)) == 4


def test_a_cursor_that_keeps_repeating_stops_the_walk_as_incomplete():
    pages = [page([9, 8], 8000)] + [page([7], 8000)] * 5
    ids, walk = walk_all(pages)
    assert walk.stop_reason == "cursor_not_advancing"
    assert not walk.complete
    assert walk.pages == 3  # the first page, the anomaly, and its one repetition
    assert len(ids) == 3


def test_a_zero_cursor_with_has_more_is_an_anomaly_not_the_end():
    ids, walk = walk_all([page([9], 0), page([9, 8], 8000, has_more=False)])
    assert walk.complete and walk.repeated_pages == 1 and len(ids) == 2


def test_duplicates_across_pages_are_dropped():
    ids, walk = walk_all([page([9, 8], 8000), page([8, 7], 7000, has_more=False)])
    assert len(ids) == len(set(ids)) == 3
    assert walk.duplicates == 1


def test_empty_pages_with_has_more_end_after_a_few():
    pages = [page([9], 9000)] + [page([], 9000 - i) for i in range(1, 10)]
    _, walk = walk_all(pages)
    assert walk.stop_reason == "empty_pages" and not walk.complete
    assert walk.pages == 1 + MAX_EMPTY_PAGES + PAGE_REPEATS


def test_short_pages_with_has_more_continue():
    ids, walk = walk_all([page([9], 9000), page([8], 8000), page([7], 7000, has_more=False)])
    assert len(ids) == 3 and walk.stop_reason == "has_more_false"


@pytest.mark.parametrize(("watermark", "expected"), [(8, 1), (7, 2), (0, 3)])
def test_incremental_walk_stops_at_stored_videos(watermark, expected):
    ids, walk = walk_all(
        [page([9, 8], 8000), page([7], 7000, has_more=False)], stop_at_or_before=watermark
    )
    assert len(ids) == expected
    assert walk.complete


def test_max_pages_is_a_hard_stop():
    ids, walk = walk_all([page([100 - i], 100_000 - i * 1000) for i in range(50)], max_pages=5)
    assert (walk.pages, walk.stop_reason, len(ids)) == (5, "max_pages", 5)
    assert not walk.complete


@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=(1 << 64) + 5).map(str),
            st.integers(min_value=0, max_value=50).map(str),  # repeats
            st.sampled_from(["", "0", "007", "-1", "1e3", "٣", "18446744073709551616", "x"]),
        ),
        max_size=3_000,
    )
)
@settings(max_examples=40, deadline=None)
def test_seen_ids_answer_exactly_like_a_set_of_strings(ids):
    # Merges every 4 new numbers, so repeats meet ids in both the pending set and the array.
    pagination.MIN_PENDING, saved = 4, pagination.MIN_PENDING
    try:
        _seen_ids_like_a_set(ids)
    finally:
        pagination.MIN_PENDING = saved


def _seen_ids_like_a_set(ids: list[str]) -> None:
    seen, reference = SeenIds(), set()
    for video_id in ids:
        assert (video_id in seen) == (video_id in reference)
        seen.add(video_id)
        reference.add(video_id)
    assert len(seen) == len(reference)
    assert all(video_id in seen for video_id in reference)
    assert "never-added" not in seen and 12 not in seen

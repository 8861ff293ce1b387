"""Day-to-day life of the simulated creators: what `TikTokSimulator.advance_days` changes.

Per day advanced (the clock moves first), every account with a visible video:

1. posts 1 or 2 new videos, at seeded seconds of the day just elapsed, newest of the account;
2. rewrites the caption of one video that existed before that day's posts;
3. on every other day (day + account index even), deletes one video older than 30 days.

A video posted or edited within one `advance_days` call is never deleted by the same call, and no
video is edited twice in it, so every posted and edited id of a DayChanges is visible after it.
Picks are seeded by (seed, day ordinal, account), so the same seed, clock and history give the
same DayChanges. Work and memory are O(accounts + changes) per day, whatever the video counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from simulators.tiktok.data import DAY_SECONDS
from simulators.tiktok.state import SimState
from simulators.tiktok.text import edited_caption, seeded_int
from simulators.tiktok.videos import AccountVideos

MAX_POSTS_PER_DAY = 2
DELETE_MIN_AGE_SECONDS = 30 * DAY_SECONDS


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class DayChanges:
    """What one advance_days call did; per account index (every account, empty when untouched).

    Ids are in the order the changes happened, day by day: `posted` oldest post first (a video
    list shows them reversed), `edited` with their new text in `captions`.
    """

    days: int
    now: float  # the simulator's now after the call
    posted: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: _frozen({}))
    edited: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: _frozen({}))
    deleted: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: _frozen({}))
    captions: Mapping[str, str] = field(default_factory=lambda: _frozen({}))


@dataclass
class _Tally:
    """The changes of one call so far, by account (ids) and by video index (for the exclusions)."""

    posted: dict[int, list[str]] = field(default_factory=dict)
    edited: dict[int, list[str]] = field(default_factory=dict)
    deleted: dict[int, list[str]] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    touched: dict[int, set[int]] = field(default_factory=dict)  # posted or edited indexes
    edited_indexes: dict[int, set[int]] = field(default_factory=dict)

    def freeze(self, accounts: int, days: int, now: float) -> DayChanges:
        return DayChanges(
            days=days,
            now=now,
            posted=_frozen({a: tuple(self.posted.get(a, ())) for a in range(accounts)}),
            edited=_frozen({a: tuple(self.edited.get(a, ())) for a in range(accounts)}),
            deleted=_frozen({a: tuple(self.deleted.get(a, ())) for a in range(accounts)}),
            captions=_frozen(self.captions),
        )


def advance_days(state: SimState, days: int, churn: bool) -> DayChanges:
    """Move the clock `days` whole days, churning each day when asked; see the module docstring."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a whole number >= 0, not {days!r}")
    tally = _Tally()
    for _ in range(days):
        with state.lock:  # one day is all or nothing for a request answered meanwhile
            start = state.now()
            end = state.advance_clock(DAY_SECONDS)
            state.days_advanced += 1
            if churn:
                _churn_day(state, state.days_advanced, start, end, tally)
    return tally.freeze(len(state.catalog.accounts), days, state.now())


def _churn_day(state: SimState, day: int, start: float, end: float, tally: _Tally) -> None:
    for account in range(len(state.catalog.accounts)):
        if state.videos(account).visible_count() == 0:
            continue  # an empty account stays empty, like the recorded one
        posts = _post(state, account, day, start, end, tally)
        _edit(state, account, day, posts, tally)
        if (day + account) % 2 == 0:
            _delete(state, account, day, end, tally)


def _post(state: SimState, account: int, day: int, start: float, end: float, tally: _Tally) -> int:
    """Post at seeded seconds of (start, end]; returns how many were posted."""
    seed = state.config.seed
    count = 1 + seeded_int(seed, "churn-posts", account, day) % MAX_POSTS_PER_DAY
    offsets = sorted(
        1 + seeded_int(seed, "churn-post-at", account, day, n) % DAY_SECONDS for n in range(count)
    )
    videos = state.videos(account)
    last = videos.newest_time()
    posted = 0
    for offset in offsets:
        # Strictly newer than the newest, so create_time keeps falling along the timeline.
        create_time = int(start) + offset if last is None else max(int(start) + offset, last + 1)
        if create_time > end:
            break  # only with a clock behind the generated videos; nothing fits in the day
        video_id = state.post_video(account, create_time)
        tally.posted.setdefault(account, []).append(video_id)
        tally.touched.setdefault(account, set()).add(videos.next_index() + posted)
        last, posted = create_time, posted + 1
    return posted


def _pick(
    videos: AccountVideos, first: int, roll: int, excluded: set[int]
) -> tuple[int, int] | None:
    """(position, index) of the first visible, not excluded video from a seeded position on.

    Walks forward from `first + roll % span`, wrapping, at most |deleted| + |excluded| + 1 steps:
    that many consecutive positions always hold an eligible video, when there is one.
    """
    span = videos.total - first
    if span <= 0:
        return None
    offset = roll % span
    for step in range(min(span, len(videos.changes.deleted) + len(excluded) + 1)):
        position = first + (offset + step) % span
        index = videos.index_at(position)
        if videos.visible(index) and index not in excluded:
            return position, index
    return None


def _edit(state: SimState, account: int, day: int, posts: int, tally: _Tally) -> None:
    videos = state.videos(account)
    seed = state.config.seed
    excluded = tally.edited_indexes.setdefault(account, set())
    # Positions below `posts` are the videos posted today: the edit goes to an older one.
    found = _pick(videos, posts, seeded_int(seed, "churn-edit", account, day), excluded)
    if found is None:
        return
    index = found[1]
    text = edited_caption(seed, account, index, day)
    state.edit_caption(account, index, text)
    video_id = videos.video_id(index)
    tally.edited.setdefault(account, []).append(video_id)
    tally.captions[video_id] = text
    excluded.add(index)
    tally.touched.setdefault(account, set()).add(index)


def _delete(state: SimState, account: int, day: int, end: float, tally: _Tally) -> None:
    videos = state.videos(account)
    # start(cursor) is the first position with create_time * 1000 < cursor: older than 30 days.
    first = videos.start(int(end - DELETE_MIN_AGE_SECONDS) * 1000)
    excluded = tally.touched.get(account, set())
    roll = seeded_int(state.config.seed, "churn-delete", account, day)
    found = _pick(videos, first, roll, excluded)
    if found is None:
        return
    index = found[1]
    state.delete_video(account, index)
    tally.deleted.setdefault(account, []).append(videos.video_id(index))

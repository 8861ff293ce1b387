"""Round trip: simulator levers (post, edit, delete, advance_days) -> /v2/video/list/, /query/
and /user/info/ over HTTP, as a daily sync would see the creators change from day to day.

Checks that posted videos come first and decode, edited captions show in every caption field,
deleted old videos vanish, video_count follows, the clock moves (a ManualClock, or an offset over
a clock that cannot be moved), and the same seed gives the same DayChanges.
"""

from __future__ import annotations

import html
import time
import tracemalloc
from collections.abc import Callable

import pytest

from simulators.tiktok import DayChanges, ManualClock, SimulatorConfig, TikTokSimulator
from simulators.tiktok.churn import DELETE_MIN_AGE_SECONDS
from simulators.tiktok.clock import DEFAULT_START
from simulators.tiktok.data import DAY_SECONDS
from tests.simulators.conftest import StartSim
from tests.simulators.harness import Harness

GENERATED = 30  # videos_per_account of the default harness
# Accounts of the default harness (5 accounts, every 4th one empty) that have videos.
ACTIVE = (0, 1, 2, 4)
NEW_CAPTION = "Nouvelle légende <b>&</b> 新しいキャプション 🎬 #fyp"


def ids_of(videos: list[dict[str, object]]) -> list[str]:
    return [str(video["id"]) for video in videos]


def video_count(harness: Harness, token: str) -> int:
    user = harness.user_info(token, "video_count").json()["data"]["user"]
    return int(user["video_count"])


def query(harness: Harness, token: str, video_ids: list[str]) -> dict[str, dict[str, object]]:
    response = harness.video_query(token, video_ids)
    assert response.status_code == 200, response.text
    return {str(video["id"]): video for video in response.json()["data"]["videos"]}


def assert_walk_is_a_clean_timeline(videos: list[dict[str, object]]) -> None:
    times = [int(video["create_time"]) for video in videos]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    assert len(set(ids_of(videos))) == len(videos)


def test_posted_videos_are_listed_first_and_queryable(harness: Harness) -> None:
    token = harness.access_token()
    harness.clock.advance(3_600)
    first = harness.sim.post_video(0, create_time=int(harness.clock()) - 60)
    second = harness.sim.post_video(0)  # at the simulator's now
    # Ids are TikTok-shaped: 19 digits, the create_time in the high 32 bits.
    for video_id in (first, second):
        assert len(video_id) == 19 and int(video_id) >> 32 <= harness.clock()

    page = harness.video_list(token, {"max_count": 3}).json()["data"]
    assert ids_of(page["videos"])[:2] == [second, first] and page["has_more"] is True
    assert page["cursor"] == page["videos"][-1]["create_time"] * 1000

    walked = harness.walk(token, max_count=1)  # every page boundary, through posts and beyond
    assert_walk_is_a_clean_timeline(walked)
    assert len(walked) == GENERATED + 2 == video_count(harness, token)
    assert harness.sim.accounts[0].video_count == GENERATED + 2

    found = query(harness, token, [first, second])
    assert set(found) == {first, second}
    assert found[first]["create_time"] == int(first) >> 32
    assert found[first]["video_description"] and found[first]["view_count"] > 0


def test_pagination_faults_walk_through_posted_videos_too(harness: Harness) -> None:
    token = harness.access_token()
    now = int(harness.clock())
    posted = [harness.sim.post_video(0, now - 30 + second) for second in range(3)]
    first = harness.video_list(token, {"max_count": 2}).json()["data"]
    assert ids_of(first["videos"]) == posted[:0:-1]
    harness.sim.inject("video_list", "duplicate_items")
    second = harness.video_list(token, {"max_count": 2, "cursor": first["cursor"]}).json()["data"]
    assert ids_of(second["videos"]) == [posted[1], posted[0]]  # half a page back: one repeat
    harness.sim.inject("video_list", "empty_page_has_more")
    empty = harness.video_list(token, {"max_count": 2}).json()["data"]
    # One millisecond below the newest post's second: the next page starts with that post.
    assert empty["videos"] == [] and empty["cursor"] == (int(posted[2]) >> 32) * 1000 + 999
    resumed = harness.video_list(token, {"max_count": 1, "cursor": empty["cursor"]}).json()
    assert ids_of(resumed["data"]["videos"]) == [posted[2]]


def test_posting_keeps_create_time_newest_and_not_in_the_future(harness: Harness) -> None:
    now = int(harness.clock())
    with pytest.raises(ValueError, match="later than the simulator's now"):
        harness.sim.post_video(0, create_time=now + 1)
    harness.sim.post_video(0, create_time=now)
    with pytest.raises(ValueError, match="needs a later create_time"):
        harness.sim.post_video(0, create_time=now)
    with pytest.raises(ValueError, match="unknown simulated account"):
        harness.sim.post_video(99)


def test_a_posted_video_can_be_deleted_and_its_metrics_grow_per_day(harness: Harness) -> None:
    token = harness.access_token()
    kept, gone = harness.sim.post_video(0, int(harness.clock()) - 60), harness.sim.post_video(0)
    harness.sim.delete_video(0, gone)
    assert query(harness, token, [kept, gone]).keys() == {kept}
    assert video_count(harness, token) == GENERATED + 1
    before = query(harness, token, [kept])[kept]
    harness.clock.advance(DAY_SECONDS)
    after = query(harness, harness.access_token(), [kept])[kept]  # the 24 h token died
    assert after["view_count"] > before["view_count"]
    assert after["like_count"] >= before["like_count"]


def test_an_edited_caption_is_shown_by_list_and_query(harness: Harness) -> None:
    token = harness.access_token()
    video_id = harness.sim.video_ids(0, 12, 13)[0]
    harness.sim.edit_caption(0, video_id, NEW_CAPTION)

    listed = {str(video["id"]): video for video in harness.walk(token)}
    for video in (listed[video_id], query(harness, token, [video_id])[video_id]):
        assert video["title"] == video["video_description"] == NEW_CAPTION
        assert html.escape(NEW_CAPTION) in str(video["embed_html"])
    # Other videos keep their generated captions.
    other = harness.sim.video_ids(0, 13, 14)[0]
    assert listed[other]["title"] != NEW_CAPTION


def test_an_edited_caption_is_cut_to_150_characters(harness: Harness) -> None:
    token = harness.access_token()
    video_id = harness.sim.video_ids(0, 0, 1)[0]
    harness.sim.edit_caption(0, video_id, "🎬" * 200)
    video = query(harness, token, [video_id])[video_id]
    assert video["title"] == video["video_description"] == "🎬" * 150


def test_only_a_visible_video_of_the_account_can_be_edited(harness: Harness) -> None:
    deleted, foreign = harness.sim.video_ids(0, 5, 6)[0], harness.sim.video_ids(1, 0, 1)[0]
    harness.sim.delete_video(0, deleted)
    with pytest.raises(ValueError, match="was deleted"):
        harness.sim.edit_caption(0, deleted, NEW_CAPTION)
    with pytest.raises(ValueError, match="does not belong"):
        harness.sim.edit_caption(0, foreign, NEW_CAPTION)


def test_one_day_of_churn_follows_the_rules(harness: Harness) -> None:
    start = harness.clock()
    changes = harness.sim.advance_days()
    assert changes.days == 1 and changes.now == harness.clock() == start + DAY_SECONDS
    assert changes.posted[3] == changes.edited[3] == changes.deleted[3] == ()  # stays empty
    for account in ACTIVE:
        assert 1 <= len(changes.posted[account]) <= 2
        assert len(changes.edited[account]) == 1
        # Day 1: the accounts with an odd index delete (day + account even).
        assert len(changes.deleted[account]) == (1 if account % 2 == 1 else 0)
        for video_id in changes.posted[account]:
            assert start < int(video_id) >> 32 <= changes.now
        for video_id in changes.deleted[account]:
            assert int(video_id) >> 32 < changes.now - DELETE_MIN_AGE_SECONDS
        assert not set(changes.edited[account]) & set(changes.posted[account])

    second = harness.sim.advance_days()
    for account in ACTIVE:
        assert len(second.deleted[account]) == (1 if account % 2 == 0 else 0)


@pytest.mark.parametrize("account", ACTIVE)
def test_a_daily_sync_sees_every_change_through_the_api(harness: Harness, account: int) -> None:
    changes = harness.sim.advance_days(3)
    token = harness.access_token(account)
    posted, edited, deleted = (changes.posted, changes.edited, changes.deleted)

    walked = harness.walk(token, max_count=4)
    assert_walk_is_a_clean_timeline(walked)
    newest_first = list(reversed(posted[account]))
    assert ids_of(walked)[: len(newest_first)] == newest_first
    assert not set(deleted[account]) & set(ids_of(walked))
    expected = GENERATED + len(posted[account]) - len(deleted[account])
    assert len(walked) == video_count(harness, token) == expected
    # Days 1-3, a delete when day + account is even: days 1 and 3 for odd accounts, else day 2.
    assert len(deleted[account]) == (2 if account % 2 else 1)

    found = query(harness, token, [*posted[account], *edited[account], *deleted[account]])
    assert set(found) == set(posted[account]) | set(edited[account])
    listed = {str(video["id"]): video for video in walked}
    for video_id in edited[account]:
        text = changes.captions[video_id]
        assert found[video_id]["title"] == listed[video_id]["video_description"] == text


def test_without_churn_only_the_clock_moves(harness: Harness) -> None:
    token = harness.access_token()
    before = harness.walk(token)
    changes = harness.sim.advance_days(2, churn=False)
    assert harness.clock() == DEFAULT_START + 2 * DAY_SECONDS
    assert all(not ids for ids in (*changes.posted.values(), *changes.deleted.values()))
    assert not any(changes.edited.values()) and not changes.captions
    after = harness.walk(harness.access_token())
    assert ids_of(after) == ids_of(before)
    assert after[0]["view_count"] > before[0]["view_count"]  # metrics still grow per day


def test_advance_days_refuses_a_negative_count(harness: Harness) -> None:
    with pytest.raises(ValueError, match="whole number"):
        harness.sim.advance_days(-1)
    assert harness.sim.advance_days(0) == DayChanges(
        days=0,
        now=harness.clock(),
        posted=dict.fromkeys(range(5), ()),
        edited=dict.fromkeys(range(5), ()),
        deleted=dict.fromkeys(range(5), ()),
    )


def fixed_clock(at: float = DEFAULT_START) -> Callable[[], float]:
    """A clock the simulator cannot advance, standing in for time.time without real waiting."""
    return lambda: at


@pytest.mark.parametrize("clock", [fixed_clock(), fixed_clock(DEFAULT_START + 0.75)])
def test_a_clock_that_cannot_move_gets_an_offset(
    start_sim: StartSim, clock: Callable[[], float]
) -> None:
    harness = start_sim(clock=clock)
    login = harness.login()
    token = str(login["access_token"])
    before = harness.user_info(token, "follower_count,likes_count,avatar_url").json()["data"]
    growth = harness.sim.accounts[0].follower_daily_growth

    harness.sim.advance_days(1, churn=False)
    assert harness.sim.now() == clock() + DAY_SECONDS
    # The 24 h access token died with the day; the refresh token still works.
    assert harness.user_info(token, "open_id").status_code == 401
    fresh = harness.refresh(str(login["refresh_token"])).json()
    assert fresh["expires_in"] == 86_400
    fields = "follower_count,likes_count,avatar_url"
    after = harness.user_info(fresh["access_token"], fields).json()["data"]
    assert after["user"]["follower_count"] == before["user"]["follower_count"] + growth
    likes_growth = harness.sim.accounts[0].likes_daily_growth
    assert after["user"]["likes_count"] == before["user"]["likes_count"] + likes_growth
    assert avatar_expiry(after) - avatar_expiry(before) == DAY_SECONDS


def avatar_expiry(data: dict[str, dict[str, str]]) -> int:
    return int(data["user"]["avatar_url"].split("x-expires=")[1].split("&")[0])


def test_advance_days_over_time_time_keeps_an_offset(start_sim: StartSim) -> None:
    harness = start_sim(clock=time.time)
    before = time.time()
    harness.sim.advance_days(2, churn=False)
    # Bounds on both sides of the calls, since real time keeps running meanwhile.
    assert before + 2 * DAY_SECONDS <= harness.sim.now() <= time.time() + 2 * DAY_SECONDS
    posted = harness.sim.advance_days(1).posted[0]
    assert posted and all(int(v) >> 32 > before + 2 * DAY_SECONDS for v in posted)
    assert all(int(v) >> 32 <= harness.sim.now() for v in posted)


def simulator(seed: int = 7) -> TikTokSimulator:
    return TikTokSimulator(SimulatorConfig(seed=seed, clock=ManualClock(), accounts=6))


def test_the_same_seed_gives_the_same_changes() -> None:
    assert simulator(seed=7).advance_days(4) == simulator(seed=7).advance_days(4)
    assert simulator(seed=7).advance_days(4) != simulator(seed=8).advance_days(4)


def test_posts_do_not_depend_on_how_the_days_are_split() -> None:
    # The seed, the day ordinal and the clock choose the posts; edits and deletes can differ,
    # since one call never deletes (or edits again) what it posted or edited itself.
    stepped = simulator()
    first, second = stepped.advance_days(), stepped.advance_days()
    at_once = simulator().advance_days(2)
    assert at_once.now == second.now
    for account in range(6):
        assert at_once.posted[account] == first.posted[account] + second.posted[account]


def test_churn_on_huge_accounts_costs_only_the_changes() -> None:
    config = SimulatorConfig(clock=ManualClock(), accounts=3, video_count_overrides={0: 100_000})
    simulator = TikTokSimulator(config)
    tracemalloc.start()
    try:
        changes = simulator.advance_days(5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes: nothing proportional to the 100,000 videos
    assert simulator.accounts[0].video_count == 100_000 + len(changes.posted[0]) - len(
        changes.deleted[0]
    )


def test_a_data_knob_change_forgets_the_changes(harness: Harness) -> None:
    harness.sim.advance_days(2)
    harness.sim.set(videos_per_account=GENERATED + 1)
    harness.sim.set(videos_per_account=GENERATED)
    assert [a.video_count for a in harness.sim.accounts] == [GENERATED] * 3 + [0] + [GENERATED]

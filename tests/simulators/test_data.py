"""Round trip: seed -> synthetic creators and videos -> the JSON two simulators serve.

Determinism (same seed, same clock, same calls -> byte-identical bodies), id and timeline
properties of the on-demand video catalog, and the text every creator and caption carries.
"""

from __future__ import annotations

import re
import tracemalloc
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.tiktok import ManualClock, SimulatorConfig
from simulators.tiktok.data import ANCHOR_EPOCH, Catalog
from simulators.tiktok.render import VIDEO_FIELDS
from simulators.tiktok.text import CREATORS
from tests.simulators.conftest import StartSim
from tests.simulators.harness import USER_FIELDS, Harness

OPEN_ID = re.compile(r"^-000[A-Za-z0-9_-]{32}$")


def session_bodies(harness: Harness) -> list[bytes]:
    """The raw bytes of a fixed sequence of calls a sync would make."""
    token = harness.token(
        grant_type="authorization_code",
        code=harness.sim.authorize(
            0, "user.info.basic,user.info.stats,video.list", "http://127.0.0.1:1/cb"
        ),
        redirect_uri="http://127.0.0.1:1/cb",
    )
    access = token.json()["access_token"]
    bodies = [token.content, harness.user_info(access, USER_FIELDS).content]
    bodies.append(harness.video_list(access, {"max_count": 20}).content)
    bodies.append(harness.video_query(access, harness.sim.video_ids(0, 5, 9)).content)
    return bodies


def test_same_seed_same_bytes_other_seed_other_data(start_sim: StartSim) -> None:
    one = start_sim(seed=7, clock=ManualClock())
    two = start_sim(seed=7, clock=ManualClock())
    other = start_sim(seed=8, clock=ManualClock())
    assert session_bodies(one) == session_bodies(two)
    assert one.sim.accounts == two.sim.accounts
    assert one.sim.accounts != other.sim.accounts
    assert one.sim.video_ids(0, 0, 5) != other.sim.video_ids(0, 0, 5)


def test_account_identities() -> None:
    accounts = Catalog(SimulatorConfig(accounts=12)).accounts
    assert all(OPEN_ID.match(account.open_id) for account in accounts)
    assert all(uuid.UUID(account.union_id).version == 5 for account in accounts)
    assert len({account.open_id for account in accounts}) == 12
    assert len({account.username for account in accounts}) == 12
    assert all(isinstance(account.is_verified, bool) for account in accounts)
    assert [account.video_count for account in accounts][:4] == [30, 30, 30, 0]


def test_any_five_accounts_have_emoji_and_non_latin_names() -> None:
    for seed in range(len(CREATORS)):
        names = [account.display_name for account in Catalog(SimulatorConfig(seed=seed)).accounts]
        assert any(ord(char) > 0x1F000 for name in names for char in name), seed
        assert any(not name.replace("é", "e").isascii() for name in names), seed


def test_video_objects_have_all_sixteen_fields_with_doc_types(harness: Harness) -> None:
    token = harness.access_token()
    videos = harness.walk(token)
    types = {"id": str, "create_time": int, "is_aigc": bool, "title": str, "view_count": int}
    for video in videos:
        assert tuple(video) == VIDEO_FIELDS
        assert all(isinstance(video[name], kind) for name, kind in types.items())
        assert len(video["title"]) <= 150 and len(video["video_description"]) <= 150
        assert video["create_time"] < ANCHOR_EPOCH
        assert video["id"] in video["share_url"] and video["id"] in video["embed_html"]
        expires = int(re.search(r"x-expires=(\d+)", video["cover_image_url"]).group(1))
        assert expires == int(harness.clock()) + 6 * 3600
    assert max(len(video["video_description"]) for video in videos) > 140  # cut at the limit


def test_video_metrics_grow_with_the_clock(harness: Harness) -> None:
    token = harness.access_token()
    fields = "id,view_count,like_count"
    before = harness.video_list(token, {"max_count": 5}, fields).json()["data"]["videos"]
    harness.clock.advance(10 * 86_400)
    token = harness.access_token()  # the first one has expired meanwhile
    after = harness.video_list(token, {"max_count": 5}, fields).json()["data"]["videos"]
    assert all(b["view_count"] < a["view_count"] for b, a in zip(before, after, strict=True))
    assert all(b["like_count"] <= a["like_count"] for b, a in zip(before, after, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    count=st.integers(1, 4_000_000),
    fraction=st.floats(0, 1, exclude_max=True),
)
def test_ids_decode_and_time_strictly_falls(seed: int, count: int, fraction: float) -> None:
    catalog = Catalog(SimulatorConfig(seed=seed, accounts=2, video_count_overrides={1: count}))
    index = int(fraction * (count - 1))
    video_id = catalog.video_id(1, index)
    assert len(video_id) == 19 and int(video_id) > 2**53
    assert catalog.decode_video_id(video_id) == (1, index)
    assert catalog.decode_video_id(str(int(video_id) + 1)) is None
    if index + 1 < count:
        assert catalog.create_time(1, index) > catalog.create_time(1, index + 1)
        cursor = catalog.create_time(1, index) * 1000
        assert catalog.start_index(1, cursor) == index + 1


def test_huge_accounts_are_not_materialised() -> None:
    tracemalloc.start()
    try:
        catalog = Catalog(SimulatorConfig(accounts=3, video_count_overrides={0: 4_000_000}))
        page, has_more = catalog.collect(0, catalog.start_index(0, None), 20, frozenset())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page == tuple(range(20)) and has_more
    assert peak < 1_000_000  # bytes: nothing proportional to the four million videos

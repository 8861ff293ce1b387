"""Properties of the TikTok response boundary (classify_response, parse_user, parse_video_page,
PageWalk) under hostile bodies: random bytes, arbitrary JSON, envelopes with wrong types, NaN and
Infinity tokens, giant ints, lone surrogates, megabyte strings and bodies nested past the stack.

Every body yields either data and a frozen model, or a typed TikTokError whose message is short
and names what was wrong; never a KeyError, TypeError, AttributeError or RecursionError.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resources.tiktok.errors import ContractViolation, TikTokError, TransientError
from resources.tiktok.models import (
    TikTokUser,
    TikTokVideo,
    VideoPage,
    parse_user,
    parse_video,
    parse_video_page,
)
from resources.tiktok.pagination import PageWalk
from resources.tiktok.responses import classify_response
from tests.hostile import HUGE_TEXT, deeply_nested, hostile_settings, json_like

# A message is read by people in the Dagster UI: no megabyte of echoed body.
MAX_MESSAGE_CHARS = 1_000
STATUSES = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503])
USER_FIELDS = [f.name for f in TikTokUser.__dataclass_fields__.values()]
VIDEO_FIELDS = [f.name for f in TikTokVideo.__dataclass_fields__.values()]


def _body(value: Any) -> bytes:
    # allow_nan: TikTok's JSON could carry NaN/Infinity tokens, which Python's decoder accepts.
    return json.dumps(value, default=str, allow_nan=True).encode("utf-8", "surrogatepass")


def _classify(status: int, content: bytes, endpoint: str = "video_list") -> dict[str, Any] | None:
    try:
        data = classify_response(httpx.Response(status, content=content), endpoint)
    except TikTokError as err:
        assert err.message and len(err.message) < MAX_MESSAGE_CHARS, err.message[:200]
        assert str(err) == err.message
        assert all(len(str(value)) < MAX_MESSAGE_CHARS for value in err.metadata().values())
        return None
    assert isinstance(data, dict)
    return data


def _parse_all(data: dict[str, Any]) -> None:
    for parse, payload in ((parse_user, data.get("user")), (parse_video_page, data)):
        try:
            parsed = parse(payload)
        except ContractViolation as err:
            # The message names the field path it found wrong, e.g. data.videos[3].view_count.
            assert err.message.startswith("data") and len(err.message) < MAX_MESSAGE_CHARS
            continue
        assert isinstance(parsed, TikTokUser | VideoPage)


envelope_error = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {"code": st.one_of(st.sampled_from(["ok", "rate_limit_exceeded", ""]), json_like)},
        optional={"message": json_like, "log_id": json_like},
    ),
    st.fixed_dictionaries(
        {"code": st.just("ok"), "message": st.just(""), "log_id": st.text(max_size=40)}
    ),
    st.fixed_dictionaries({"code": st.just(HUGE_TEXT), "log_id": st.just(HUGE_TEXT)}),
)
user_payload = st.dictionaries(st.sampled_from(USER_FIELDS), json_like, max_size=6)
video_payload = st.dictionaries(st.sampled_from(VIDEO_FIELDS), json_like, max_size=6)
data_payload = st.one_of(
    json_like,
    st.fixed_dictionaries({}, optional={"user": st.one_of(user_payload, json_like)}),
    st.fixed_dictionaries(
        {},
        optional={
            "videos": st.one_of(st.lists(video_payload, max_size=3), json_like),
            "cursor": json_like,
            "has_more": json_like,
        },
    ),
)
envelopes = st.fixed_dictionaries({}, optional={"data": data_payload, "error": envelope_error})


@hostile_settings(300)
@given(STATUSES, st.binary(max_size=300))
def test_random_bytes_give_data_or_a_typed_error(status: int, content: bytes) -> None:
    data = _classify(status, content)
    if data is not None:
        _parse_all(data)


@hostile_settings(300)
@given(STATUSES, st.one_of(envelopes, json_like))
def test_arbitrary_json_gives_a_model_or_a_contract_violation(status: int, body: Any) -> None:
    data = _classify(status, _body(body))
    if data is not None:
        _parse_all(data)


@hostile_settings(200)
@given(st.dictionaries(st.sampled_from(VIDEO_FIELDS), json_like, max_size=8))
def test_every_wrong_field_type_is_named(payload: dict[str, Any]) -> None:
    payload = {"id": "7312345123451234512", "create_time": 1700000000} | payload
    try:
        video = parse_video(payload, 3)
    except ContractViolation as err:
        field = err.message.split(":")[0]
        assert field.startswith("data.videos[3].")
        assert field.removeprefix("data.videos[3].") in VIDEO_FIELDS
        return
    assert isinstance(video, TikTokVideo)


def _ok(data: Any) -> bytes:
    return _body({"data": data, "error": {"code": "ok", "message": "", "log_id": "L"}})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # nested far past Python's recursion limit: the decoder gives up, we report it
        (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"),
        (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, "not valid JSON"),
        # deep but decodable: the envelope check still applies
        (_body(deeply_nested(500)), "no `error` envelope"),
        # more digits than Python's int parser takes (4300)
        (b'{"error": {"code": "ok"}, "data": {"cursor": ' + b"9" * 5000 + b"}}", "not valid JSON"),
        # not UTF-8 (nor UTF-16/32, which the decoder would detect)
        (b'{"error": {"code": "ok\xff\xff"}}', "not valid JSON"),
        # a multi-byte character cut in half at the end of the body
        (_ok({"user": {"open_id": "\u00e9"}})[:-1] + b"\xc3", "not valid JSON"),
    ],
)
def test_bodies_the_decoder_cannot_take(content: bytes, message: str) -> None:
    with pytest.raises(TikTokError, match=message) as caught:
        classify_response(httpx.Response(200, content=content), "video_list")
    assert len(caught.value.message) < MAX_MESSAGE_CHARS
    # A body that does not decode was cut or garbled on the way: retried (bounded) like a blip;
    # a decodable body outside the contract is never retried.
    undecodable = message == "not valid JSON"
    assert caught.value.retryable is undecodable
    assert isinstance(caught.value, TransientError if undecodable else ContractViolation)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # NaN and Infinity tokens are floats, never counts
        (
            {"user": {"open_id": "x", "follower_count": float("nan")}},
            "follower_count: expected int",
        ),
        ({"user": {"open_id": "x", "likes_count": float("inf")}}, "likes_count: expected int"),
        # past TikTok's int64
        ({"user": {"open_id": "x", "video_count": 2**63}}, "video_count: number out of"),
        ({"user": {"open_id": "x", "video_count": -(2**63) - 1}}, "video_count: number out of"),
        # half a surrogate pair, which no database stores as UTF-8
        ({"user": {"open_id": "x", "display_name": "a\ud800b"}}, "display_name: text is not"),
        # the open_id every row is keyed on
        ({"user": {"open_id": None}}, "open_id: required field is missing"),
        ({"user": {"open_id": ["x"]}}, "open_id: expected str, got list"),
        ({"user": "x"}, "data.user: expected an object, got str"),
    ],
)
def test_hostile_user_values_are_contract_violations(data: dict, message: str) -> None:
    decoded = classify_response(httpx.Response(200, content=_ok(data)), "user_info")
    with pytest.raises(ContractViolation, match=message):
        parse_user(decoded.get("user"))


def test_int64_edges_and_huge_unicode_text_parse() -> None:
    title = "\U0001f600\u202e\u0000" + HUGE_TEXT * 10  # ten megabytes of text, emoji, RTL, NUL
    data = {
        "videos": [{"id": "1", "create_time": 2**63 - 1, "title": title, "view_count": -(2**63)}],
        "cursor": 2**63 - 1,
        "has_more": False,
    }
    decoded = classify_response(httpx.Response(200, content=_ok(data)), "video_list")
    page = parse_video_page(decoded)
    assert page.videos[0].title == title
    assert page.cursor == 2**63 - 1


page_strategy = st.builds(
    VideoPage,
    videos=st.lists(
        st.builds(
            TikTokVideo,
            id=st.sampled_from([str(n) for n in range(30)]),
            create_time=st.integers(min_value=-5, max_value=100),
        ),
        max_size=5,
    ).map(tuple),
    cursor=st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(-3, 100),
    has_more=st.booleans(),
)


@hostile_settings(200)
@given(st.lists(page_strategy, min_size=1, max_size=60), st.none() | st.integers(-5, 100))
def test_page_walk_always_stops_and_never_yields_a_video_twice(
    pages: list[VideoPage], watermark: int | None
) -> None:
    walk = PageWalk(stop_at_or_before=watermark, max_pages=40)
    yielded: list[TikTokVideo] = []
    requested: int | None = None
    for step in range(100):
        # An endless stream: the server keeps answering with the next hostile page.
        page = pages[step % len(pages)]
        yielded += walk.accept(page, requested=requested)
        if walk.stopped:
            break
        requested = walk.next_cursor
    assert walk.stopped and walk.pages <= 40
    ids = [video.id for video in yielded]
    assert len(ids) == len(set(ids))
    if watermark is not None:
        # Incremental mode never hands over a video the warehouse already holds.
        assert all(video.create_time > watermark for video in yielded)

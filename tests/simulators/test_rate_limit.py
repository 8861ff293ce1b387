"""Round trip: many Display calls -> 429 rate_limit_exceeded -> fake clock slides the window.

The default 600/min limit is checked once for real; the sliding and keying rules use a small
limit so the suite stays fast. No Retry-After and no rate-limit headers, as documented.
"""

from __future__ import annotations

import pytest

from tests.simulators.conftest import StartSim
from tests.simulators.harness import Harness


def calls(harness: Harness, token: str, n: int) -> list[int]:
    return [harness.user_info(token, "open_id").status_code for _ in range(n)]


def test_601st_request_in_a_minute_is_429_without_headers(harness: Harness) -> None:
    token = harness.access_token()
    assert calls(harness, token, 600) == [200] * 600
    limited = harness.user_info(token, "open_id")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert "retry-after" not in limited.headers
    assert not any(name.startswith("x-ratelimit") for name in limited.headers)
    harness.clock.advance(60)
    assert harness.user_info(token, "open_id").status_code == 200
    stats = harness.sim.stats()["user_info"]
    assert stats["requests"] == 602 and stats["rate_limited"] == 1


def test_window_slides_with_the_clock(start_sim: StartSim) -> None:
    harness = start_sim(rate_limit_per_minute=4)
    token = harness.access_token()
    assert calls(harness, token, 2) == [200, 200]  # t = 0
    harness.clock.advance(30)
    assert calls(harness, token, 3) == [200, 200, 429]  # t = 30
    harness.clock.advance(30)  # t = 60: the two calls of t = 0 leave the window
    assert calls(harness, token, 3) == [200, 200, 429]


def test_rejected_requests_do_not_extend_the_wait(start_sim: StartSim) -> None:
    harness = start_sim(rate_limit_per_minute=2)
    token = harness.access_token()
    assert calls(harness, token, 3) == [200, 200, 429]
    harness.clock.advance(59)
    assert calls(harness, token, 5) == [429] * 5  # hammering while limited...
    harness.clock.advance(1)
    assert calls(harness, token, 1) == [200]  # ...is not counted against the client


def test_each_endpoint_has_its_own_window(start_sim: StartSim) -> None:
    harness = start_sim(rate_limit_per_minute=2)
    token = harness.access_token()
    assert calls(harness, token, 3)[-1] == 429
    assert harness.video_list(token, {"max_count": 1}).status_code == 200
    assert harness.video_query(token, []).status_code == 200


@pytest.mark.parametrize(("key", "shared"), [("app", True), ("token", False)])
def test_rate_limit_key(start_sim: StartSim, key: str, shared: bool) -> None:
    harness = start_sim(rate_limit_per_minute=2, rate_limit_key=key)
    first, second = harness.access_token(0), harness.access_token(1)
    assert calls(harness, first, 2) == [200, 200]
    expected = 429 if shared else 200
    assert harness.user_info(second, "open_id").status_code == expected


def test_rate_limit_can_be_disabled(start_sim: StartSim) -> None:
    harness = start_sim(rate_limit_per_minute=None)
    assert set(calls(harness, harness.access_token(), 30)) == {200}
    harness.sim.set(rate_limit_per_minute=5)
    assert calls(harness, harness.access_token(), 6)[-1] == 429


def test_the_most_admitted_in_any_window_is_recorded_and_reset(start_sim: StartSim) -> None:
    # What bench.clock reports as max_in_60s: admitted requests only, per endpoint.
    harness = start_sim(rate_limit_per_minute=4)
    token = harness.access_token()
    assert calls(harness, token, 3) == [200] * 3  # t = 0
    harness.clock.advance(59.5)
    assert calls(harness, token, 2) == [200, 429]  # t = 59.5: one place left in the window
    harness.clock.advance(0.5)  # t = 60: the three of t = 0 leave it
    assert calls(harness, token, 3) == [200] * 3
    assert harness.sim.most_in_window() == {"user_info": 4}  # three at 0 and one at 59.5
    assert len(harness.sim.admissions()["user_info"]) == 7
    harness.sim.reset_rate_windows()
    assert harness.sim.most_in_window() == {}
    assert calls(harness, token, 4) == [200] * 4  # a fresh window, though 4 went at t = 60

"""Round trip: TikTokSimulator start/stop -> raw HTTP/1.1 on 127.0.0.1 -> JSON back.

Lifecycle, keep-alive with exact Content-Length, unknown paths, runtime knobs and stats.
"""

from __future__ import annotations

import http.client

import httpx
import pytest

from simulators.tiktok import SimulatorConfig, TikTokSimulator
from simulators.tiktok.state import SimState
from tests.simulators.harness import Harness


def test_running_context_manager_starts_and_stops() -> None:
    sim = TikTokSimulator(SimulatorConfig(accounts=1))
    with sim.running() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{base_url}/v2/user/info/", params={"fields": "open_id"})
        assert response.status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/v2/user/info/", timeout=1.0)
    with pytest.raises(RuntimeError):
        _ = sim.base_url


def test_keep_alive_with_exact_content_length(harness: Harness) -> None:
    token = harness.access_token()
    host, port = httpx.URL(str(harness.client.base_url)).host, harness.client.base_url.port
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        for _ in range(3):  # three requests on one socket
            connection.request(
                "GET",
                "/v2/user/info/?fields=display_name",
                headers={"Authorization": f"Bearer {token}"},
            )
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert int(response.getheader("Content-Length")) == len(body)
            assert response.getheader("Connection") != "close"
            assert response.getheader("Content-Type") == "application/json; charset=utf-8"
    finally:
        connection.close()


def test_unknown_path_and_wrong_method_are_404_json(harness: Harness) -> None:
    for method, path in [("GET", "/v2/nothing/"), ("GET", "/v2/video/list/")]:
        response = harness.client.request(method, path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_set_changes_knobs_at_runtime(harness: Harness) -> None:
    token = harness.access_token()
    harness.sim.set(error_data_key="absent")
    body = harness.user_info("act.nope", "open_id").json()
    assert "data" not in body
    harness.sim.set(accounts=2, videos_per_account=3)  # data knobs rebuild the catalog
    assert [a.video_count for a in harness.sim.accounts] == [3, 3]
    assert harness.video_list(token).json()["data"]["has_more"] is False
    with pytest.raises(TypeError):
        harness.sim.set(no_such_knob=1)
    with pytest.raises(ValueError):
        harness.sim.set(rate_limit_key="ip")


def test_stats_count_and_reset(harness: Harness) -> None:
    token = harness.access_token()
    harness.user_info(token, "open_id")
    harness.user_info(token, "nope")
    stats = harness.sim.stats()
    assert stats["user_info"] == {"requests": 2, "rate_limited": 0, "errors": 1}
    assert stats["oauth_token"]["requests"] == 1 and stats["refreshes"] == 0
    harness.sim.reset_stats()
    assert harness.sim.stats()["user_info"]["requests"] == 0


def test_clock_property_is_the_injected_clock(harness: Harness) -> None:
    assert harness.sim.clock is harness.clock
    with pytest.raises(RuntimeError):
        harness.sim.start()  # already running


def test_latency_and_error_draws_are_seeded() -> None:
    config = SimulatorConfig(latency_ms=(5, 15), error_rate=0.5)
    first, second = SimState(config), SimState(config)
    draws = [first.draw_noise("video_list") for _ in range(50)]
    assert draws == [second.draw_noise("video_list") for _ in range(50)]
    assert all(0.005 <= latency <= 0.015 for latency, _ in draws)
    assert {failing for _, failing in draws} == {True, False}
    assert not any(first.draw_noise("oauth_token")[1] for _ in range(50))  # Display only

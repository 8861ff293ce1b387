"""Routing and the per-request pipeline: count, fault, latency, handler, envelope.

Kept apart from the HTTP layer so the whole behaviour is a function Request -> Reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from simulators.tiktok import display, oauth
from simulators.tiktok.faults import damage, immediate_reply
from simulators.tiktok.responses import (
    ApiError,
    OAuthError,
    Reply,
    SimRequest,
    display_error,
    display_ok,
    internal_error,
    oauth_error,
)
from simulators.tiktok.state import SimState

logger = logging.getLogger(__name__)

ROUTES: Mapping[tuple[str, str], str] = {
    ("GET", "/v2/auth/authorize/"): "authorize",
    ("POST", "/v2/oauth/token/"): "oauth_token",
    ("POST", "/v2/oauth/revoke/"): "oauth_revoke",
    ("GET", "/v2/user/info/"): "user_info",
    ("POST", "/v2/video/list/"): "video_list",
    ("POST", "/v2/video/query/"): "video_query",
}
OAuthHandler = Callable[[SimState, SimRequest, float], Reply]
DisplayHandler = Callable[[SimState, SimRequest, float, "str | None"], object]
OAUTH_HANDLERS: Mapping[str, OAuthHandler] = {
    "authorize": oauth.authorize,
    "oauth_token": oauth.token,
    "oauth_revoke": oauth.revoke,
}
DISPLAY_HANDLERS: Mapping[str, DisplayHandler] = {
    "user_info": display.user_info,
    "video_list": display.video_list,
    "video_query": display.video_query,
}
# Sleeps for the given seconds; returns False when the server is stopping meanwhile.
Wait = Callable[[float], bool]


class SimulatorApp:
    """Turns one request into one reply against the shared state."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def handle(self, request: SimRequest, wait: Wait) -> Reply:
        endpoint = ROUTES.get((request.method, request.path))
        if endpoint is None:
            now = self.state.now()
            missing = ApiError(404, "not_found", f"No such endpoint: {request.path}")
            return display_error(missing, self.state.next_log_id(now), "absent")
        self.state.stats.request(endpoint)
        fault = self.state.faults.pop(endpoint)
        delay, random_failure = self.state.draw_noise(endpoint)
        if fault == "timeout":
            delay += self.state.config.timeout_fault_seconds
        # Sleep before doing the work: a client that gave up has changed nothing (no rotation).
        if delay > 0 and not wait(delay):
            reply = Reply(status=0, reset=True)
        else:
            reply = self._answer(endpoint, request, fault, random_failure)
        self.state.stats.outcome(endpoint, reply.status, reply.reset)
        return reply

    def _answer(
        self, endpoint: str, request: SimRequest, fault: str | None, random_failure: bool
    ) -> Reply:
        state = self.state
        now = state.now()
        log_id = state.next_log_id(now)
        data_key = state.config.error_data_key
        if fault is not None:
            replacement = immediate_reply(fault, endpoint, log_id, data_key)
            if replacement is not None:
                return replacement
        if random_failure:
            return display_error(internal_error(), log_id, data_key)
        try:
            if endpoint in DISPLAY_HANDLERS:
                data = DISPLAY_HANDLERS[endpoint](state, request, now, fault)
                reply = display_ok(data, log_id)
            else:
                reply = OAUTH_HANDLERS[endpoint](state, request, now)
        except ApiError as err:
            reply = display_error(err, log_id, data_key)
        except OAuthError as err:
            reply = oauth_error(err, log_id, state.config.oauth_error_status)
        except Exception:
            # A simulator bug (or a knob changed under a live grant) must still answer over HTTP.
            logger.exception("unexpected error while answering %s", endpoint)
            reply = display_error(internal_error(), log_id, data_key)
        return damage(fault, endpoint, reply) if fault is not None else reply

"""The public face of the simulator: lifecycle plus the levers tests and demos pull."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from simulators.background import ServedInBackground
from simulators.tiktok.app import SimulatorApp
from simulators.tiktok.churn import DayChanges, advance_days
from simulators.tiktok.config import DEMO_CLIENT_KEY, SimulatorConfig
from simulators.tiktok.data import SimAccount
from simulators.tiktok.faults import AimedFaultQueue, check_fault
from simulators.tiktok.oauth import granted_scopes, issue_code, parse_scopes
from simulators.tiktok.responses import OAuthError, Reply, SimRequest
from simulators.tiktok.server import SimHTTPServer
from simulators.tiktok.state import SimState
from simulators.tiktok.traffic import most_in_window

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _AimingApp(SimulatorApp):
    """Names the account a request is made for, so faults aimed at that account can hit it."""

    def __init__(self, state: SimState, faults: AimedFaultQueue) -> None:
        super().__init__(state)
        self._faults = faults

    def handle(self, request: SimRequest, wait: Callable[[float], bool]) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        found = None
        if scheme.lower() == "bearer":
            found = self.state.auth.authenticate(token.strip(), self.state.now())
        with self._faults.answering(found[0].account if found else None):
            return super().handle(request, wait)


class TikTokSimulator(ServedInBackground):
    """TikTok OAuth + Display API v2 on a local port, deterministic from its config's seed."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = LOOPBACK) -> None:
        self._state = SimState(config or SimulatorConfig())
        self._faults = AimedFaultQueue()
        self._state.faults = self._faults
        self._app = _AimingApp(self._state, self._faults)
        self._host = host

    def _make_server(self) -> SimHTTPServer:
        # config.port 0 = an ephemeral port
        return SimHTTPServer((self._host, self._state.config.port), self._app)

    @property
    def config(self) -> SimulatorConfig:
        return self._state.config

    @property
    def clock(self) -> Callable[[], float]:
        """The configured clock; `now()` is the simulator's time (it adds advance_days' offset)."""
        return self._state.config.clock

    @property
    def accounts(self) -> tuple[SimAccount, ...]:
        return self._state.accounts()

    def now(self) -> float:
        """The simulator's now: its clock plus the days advance_days added to a real-time clock."""
        return self._state.now()

    def authorize(
        self,
        account: int | str,
        scopes: str | list[str],
        redirect_uri: str,
        client_key: str = DEMO_CLIENT_KEY,
        code_challenge: str | None = None,
    ) -> str:
        """Skip the consent page: the user grants `scopes` (plus user.info.basic); returns a code.

        The redirect URI is not checked against the registration rules here, but the token
        exchange still has to repeat it exactly.
        """
        if client_key not in self._state.config.apps:
            raise ValueError(f"unknown client_key {client_key!r}")
        try:
            requested = parse_scopes(scopes)
        except OAuthError as err:
            raise ValueError(err.description) from err
        return issue_code(
            self._state,
            client_key=client_key,
            redirect_uri=redirect_uri,
            account=self._state.catalog.resolve(account),
            scopes=granted_scopes(requested, None),
            code_challenge=code_challenge,
            now=self._state.now(),
        )

    def inject(
        self,
        endpoint: str,
        fault: str,
        count: int = 1,
        *,
        account: int | str | None = None,
        after: int = 0,
    ) -> None:
        """Queue `fault` for the next `count` requests to `endpoint` (see FAULTS).

        With `account`, only that account's requests (a Display endpoint, by its bearer token)
        meet the fault; `after` lets that many of the requests through first.
        """
        check_fault(endpoint, fault, count, aimed=account is not None, after=after)
        index = None if account is None else self._state.catalog.resolve(account)
        self._faults.push(endpoint, fault, count, account=index, after=after)

    def pending_faults(self) -> dict[str, list[str]]:
        """Faults not yet met, per endpoint (`endpoint@account` for aimed ones)."""
        return self._faults.pending()

    def set(self, **knobs: object) -> SimulatorConfig:
        """Change SimulatorConfig knobs at runtime; returns the new config."""
        return self._state.set(**knobs)

    def revoke_account(self, account: int | str) -> int:
        """The user disconnects the app: every token of the account dies; returns grants revoked."""
        return self._state.auth.revoke_account(self._state.catalog.resolve(account))

    def expire_access_tokens(self, account: int | str | None = None) -> int:
        index = None if account is None else self._state.catalog.resolve(account)
        return self._state.auth.expire_access_tokens(index, self._state.now())

    def delete_video(self, account: int | str, video_id: str) -> None:
        """The creator deletes the video (or makes it private): gone from list, query and counts."""
        index = self._state.catalog.resolve(account)
        with self._state.lock:
            self._state.delete_video(index, self._video_index(account, index, video_id))

    def post_video(self, account: int | str, create_time: int | None = None) -> str:
        """The creator posts a video, the newest of the account; returns its 19-digit id.

        `create_time` (whole seconds, default the simulator's now) must be <= now and later than
        every video of the account, deleted ones included. Its metrics start at a first day's
        views and grow per whole day since the post.
        """
        index = self._state.catalog.resolve(account)
        now = self._state.now()
        when = int(now) if create_time is None else create_time
        if isinstance(when, bool) or not isinstance(when, int):
            raise ValueError(f"create_time must be whole seconds, not {create_time!r}")
        if when > now:
            raise ValueError(f"create_time {when} is later than the simulator's now ({now:.0f})")
        return self._state.post_video(index, when)

    def edit_caption(self, account: int | str, video_id: str, text: str) -> None:
        """The creator rewrites a visible video's caption: title, video_description and
        embed_html show `text` (cut to TikTok's 150 characters) in list and query answers."""
        if not isinstance(text, str):
            raise ValueError(f"a caption is text, not {type(text).__name__}")
        index = self._state.catalog.resolve(account)
        with self._state.lock:
            video = self._video_index(account, index, video_id)
            if not self._state.videos(index).visible(video):
                raise ValueError(f"video {video_id!r} was deleted")
            self._state.edit_caption(index, video, text)

    def advance_days(self, days: int = 1, churn: bool = True) -> DayChanges:
        """Move the simulator's now `days` whole days (a ManualClock advances; any other clock,
        such as time.time, gets an offset in the simulator) and, with `churn`, let each account
        with videos post, edit and delete for each day (see simulators.tiktok.churn)."""
        return advance_days(self._state, days, churn)

    def _video_index(self, account: int | str, index: int, video_id: str) -> int:
        found = self._state.videos(index).decode(video_id)
        if found is None:
            raise ValueError(f"video {video_id!r} does not belong to account {account!r}")
        return found

    def video_ids(self, account: int | str, start: int = 0, stop: int | None = None) -> list[str]:
        """Ids of generated videos by index, newest first (deleted ones included)."""
        index = self._state.catalog.resolve(account)
        catalog = self._state.catalog
        end = (
            catalog.total_videos(index) if stop is None else min(stop, catalog.total_videos(index))
        )
        return [catalog.video_id(index, i) for i in range(start, end)]

    def stats(self) -> dict[str, object]:
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        self._state.stats.reset()

    def admissions(self) -> dict[str, list[float]]:
        """When each request the rate limit admitted was answered, per endpoint (`now()`)."""
        return self._state.rate.admitted()

    def most_in_window(self) -> dict[str, int]:
        """Per endpoint, the most requests admitted in any rate window (60 s) since the last
        reset_rate_windows: TikTok's limit holds if none is above it."""
        return {endpoint: most_in_window(times) for endpoint, times in self.admissions().items()}

    def reset_rate_windows(self) -> None:
        """A fresh start for the rate limit: empty windows, no admissions recorded."""
        self._state.rate.clear()


def serve(config: SimulatorConfig, host: str = LOOPBACK, port: int = 8642) -> None:
    """Run until Ctrl-C (the CLI's demo mode)."""
    simulator = TikTokSimulator(dataclasses.replace(config, port=port), host=host)
    simulator.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("stopping the TikTok simulator")
    finally:
        simulator.stop()

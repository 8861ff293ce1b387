"""The public face of the simulator: lifecycle plus the levers tests and demos pull."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from simulators.background import ServedInBackground
from simulators.tiktok.app import SimulatorApp
from simulators.tiktok.config import DEMO_CLIENT_KEY, SimulatorConfig
from simulators.tiktok.data import SimAccount
from simulators.tiktok.faults import check_fault
from simulators.tiktok.oauth import granted_scopes, issue_code, parse_scopes
from simulators.tiktok.responses import OAuthError
from simulators.tiktok.server import SimHTTPServer
from simulators.tiktok.state import SimState

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class TikTokSimulator(ServedInBackground):
    """TikTok OAuth + Display API v2 on a local port, deterministic from its config's seed."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = LOOPBACK) -> None:
        self._state = SimState(config or SimulatorConfig())
        self._app = SimulatorApp(self._state)
        self._host = host

    def _make_server(self) -> SimHTTPServer:
        # config.port 0 = an ephemeral port
        return SimHTTPServer((self._host, self._state.config.port), self._app)

    @property
    def config(self) -> SimulatorConfig:
        return self._state.config

    @property
    def clock(self) -> Callable[[], float]:
        return self._state.config.clock

    @property
    def accounts(self) -> tuple[SimAccount, ...]:
        return self._state.accounts()

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

    def inject(self, endpoint: str, fault: str, count: int = 1) -> None:
        """Queue `fault` for the next `count` requests to `endpoint` (see FAULTS)."""
        check_fault(endpoint, fault, count)
        self._state.faults.push(endpoint, fault, count)

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
        found = self._state.catalog.decode_video_id(video_id)
        if found is None or found[0] != index:
            raise ValueError(f"video {video_id!r} does not belong to account {account!r}")
        self._state.delete_video(index, found[1])

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

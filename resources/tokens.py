"""A connection's tokens as the Display API client sees them: fresh, refreshed once, never burned.

The access token is refreshed ahead of its expiry, computed from the last response's `expires_in`
(TikTok's docs disagree on lifetimes). A refresh is single-flight within the process (a lock per
connection) and compare-and-set in the database; when TikTok answers `invalid_grant` because another
process already rotated the refresh token, the newer stored token is used instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

from resources.connections import NEEDS_RECONNECT, Connection, ConnectionStore
from resources.tiktok.errors import NeedsReconnect
from resources.tiktok.oauth import OAuthClient

REFRESH_MARGIN_S = 300.0  # well inside both documented lifetimes (2 h and 24 h)

_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def reconnect_hint(name: str) -> str:
    return f"run `tiktok-crm-sync connections reconnect {name}` to authorize it again"


class ConnectionTokens:
    """`TokenSource` for one connection, backed by the `ConnectionStore`."""

    def __init__(
        self,
        store: ConnectionStore,
        name: str,
        oauth: OAuthClient,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._name = name
        self._oauth = oauth
        self._now = now

    def access_token(self) -> str:
        connection = self._store.get(self._name)
        if self._expiring(connection):
            return self.refresh(connection.access_token)
        return connection.access_token

    def refresh(self, rejected_token: str) -> str:
        with _locks[self._name]:
            current = self._store.get(self._name)
            if current.access_token != rejected_token and not self._expiring(current):
                return current.access_token  # another thread refreshed while we waited
            try:
                grant = self._oauth.refresh(current.refresh_token)
            except NeedsReconnect as err:
                newer = self._store.get(self._name)
                if newer.token_version != current.token_version:
                    return newer.access_token  # another process rotated it first
                reason = f"TikTok refused the refresh token; {reconnect_hint(self._name)}"
                self._store.set_status(self._name, NEEDS_RECONNECT, reason)
                raise NeedsReconnect(
                    f"connection {self._name!r} needs to be reconnected: {reason}",
                    endpoint=err.endpoint,
                    code=err.code,
                    log_id=err.log_id,
                    status=err.status,
                ) from None
            if not self._store.replace_tokens(self._name, grant, current.token_version):
                return self._store.get(self._name).access_token
            return grant.access_token

    def _expiring(self, connection: Connection) -> bool:
        return connection.access_expires_at - self._now() <= REFRESH_MARGIN_S

"""A connection's tokens as the Display API client sees them: fresh, refreshed once, never burned.

The access token is refreshed ahead of its expiry, computed from the last response's `expires_in`
(TikTok's docs disagree on lifetimes: 2 h or 24 h, tiktok-api.md section 1.5). A refresh is
single-flight across threads, processes and machines (`resources.connections.refresh_lock`): under
the lock the stored tokens are read again, and if another worker refreshed meanwhile its tokens are
used. The rotated refresh token is stored (compare-and-set on `token_version`) before the new access
token is handed out, so a crash can never leave TikTok's only valid refresh token in memory alone.

The client asks for the token just before it sends each request, after the request's wait in the
shared budget, so a token that expired while the request queued is refreshed here and never
reaches TikTok. `refresh_calls` counts the refreshes TikTok granted through this object (ahead of
expiry or after a rejection); tokens another worker refreshed meanwhile are not counted, so the
sum over all workers is what TikTok counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.exc import OperationalError

from resources.connections.refresh_lock import RefreshLockTimeout, refresh_lock
from resources.connections.store import NEEDS_RECONNECT, Connection, ConnectionStore
from resources.tiktok.errors import NeedsReconnect, TransientError
from resources.tiktok.oauth import OAuthClient, TokenGrant

REFRESH_MARGIN_S = 300.0  # well inside both documented lifetimes (2 h and 24 h)
REFRESH_MARGIN_SHARE = 0.1  # for short lifetimes: refresh in the last tenth, never every call
STORE_ATTEMPTS = 3  # the rotated refresh token is TikTok's only valid one: try hard to keep it


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
        self._known: Connection | None = None  # the stored row as last read or written
        self._lifetime: float | None = None  # seconds the last grant we received was valid for
        self.refresh_calls = 0  # refreshes this object asked TikTok for

    def access_token(self) -> str:
        known = self._known or self._read()
        if self._expiring(known):
            return self.refresh(known.access_token)
        return known.access_token

    def refresh(self, rejected_token: str) -> str:
        try:
            with refresh_lock(self._store.engine, self._name):
                return self._refresh_locked(rejected_token)
        except RefreshLockTimeout as err:
            raise TransientError(str(err), endpoint="oauth_token") from err

    def _refresh_locked(self, rejected_token: str) -> str:
        current = self._read()
        if current.status == NEEDS_RECONNECT:
            hint = reconnect_hint(self._name)
            reason = current.status_reason or f"TikTok refused the grant; {hint}"
            raise self._needs_reconnect(reason)
        if current.access_token != rejected_token and not self._expiring(current):
            return current.access_token  # another worker refreshed while we waited for the lock
        try:
            grant = self._oauth.refresh(current.refresh_token)
        except NeedsReconnect as err:
            newer = self._read()
            if newer.token_version != current.token_version:
                return newer.access_token  # re-authorized meanwhile (`connections reconnect`)
            reason = f"TikTok refused the refresh token; {reconnect_hint(self._name)}"
            self._store.set_status(self._name, NEEDS_RECONNECT, reason)
            raise self._needs_reconnect(reason, err) from None
        self.refresh_calls += 1
        self._lifetime = float(grant.expires_in)
        if not self._store_grant(grant, current.token_version):
            return self._read().access_token  # the store moved on (a reconnect): use its token
        self._read()
        return grant.access_token

    def _store_grant(self, grant: TokenGrant, version: int) -> bool:
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return self._store.replace_tokens(self._name, grant, version)
            except OperationalError:
                if attempt == STORE_ATTEMPTS:
                    raise
        return False  # pragma: no cover - the loop returns or raises

    def _read(self) -> Connection:
        self._known = self._store.get(self._name)
        return self._known

    def _needs_reconnect(self, reason: str, err: NeedsReconnect | None = None) -> NeedsReconnect:
        facts = {}
        if err is not None:
            facts = {"endpoint": err.endpoint, "code": err.code, "log_id": err.log_id}
        return NeedsReconnect(
            f"connection {self._name!r} needs to be reconnected: {reason}",
            status=err.status if err else None,
            **facts,
        )

    def _expiring(self, connection: Connection) -> bool:
        margin = REFRESH_MARGIN_S
        if self._lifetime is not None:
            margin = min(margin, self._lifetime * REFRESH_MARGIN_SHARE)
        return connection.access_expires_at - self._now() <= margin

"""Authorization codes, grants, access and refresh tokens.

One grant is one user's consent to one app. Access tokens point at their grant, so revoking the
grant kills every token at once; a refresh token is valid only while it is the grant's current one.
Tokens come from a seeded RNG so the same seed and the same calls give byte-identical sessions.
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, replace

from simulators.tiktok.config import SimulatorConfig
from simulators.tiktok.responses import OAuthError

CODE_TTL_SECONDS = 600
TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_BODY_CHARS = 40
CODE_BODY_CHARS = 56


@dataclass(frozen=True)
class AuthCode:
    """What the consent page bound the code to; the token exchange must match all of it."""

    client_key: str
    redirect_uri: str
    account: int
    scopes: tuple[str, ...]
    code_challenge: str | None
    expires_at: float


@dataclass(frozen=True)
class Grant:
    grant_id: int
    client_key: str
    account: int
    scopes: tuple[str, ...]
    refresh_token: str
    refresh_expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class Issued:
    """One successful token response (section 1.3)."""

    access_token: str
    expires_in: int
    grant: Grant
    refresh_expires_in: int


@dataclass(frozen=True)
class _AccessToken:
    grant_id: int
    expires_at: float


class AuthState:
    """Thread-safe store of codes and tokens; every check-and-change is one locked step."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._codes: dict[str, AuthCode] = {}
        self._grants: dict[int, Grant] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, int] = {}

    def _random(self, length: int) -> str:
        return "".join(self._rng.choices(TOKEN_ALPHABET, k=length))

    def _token(self, prefix: str) -> str:
        # Documented tokens contain "!" (act.9db8...TW!5259): clients must form-encode them.
        return f"{prefix}{self._random(TOKEN_BODY_CHARS)}!{self._rng.randrange(10_000):04d}"

    def issue_code(self, code: AuthCode) -> str:
        with self._lock:
            # Like the documented sample (...BELY*0!6410): useless unless URL-decoded.
            value = f"{self._random(CODE_BODY_CHARS)}*{self._rng.randrange(10)}!"
            value += f"{self._rng.randrange(10_000):04d}"
            self._codes[value] = code
            return value

    def client_token(self) -> str:
        """A client-credentials token (1.7): not stored, so Display endpoints reject it."""
        with self._lock:
            return self._token("clt.")

    def peek_code(self, value: str, now: float) -> AuthCode | None:
        with self._lock:
            code = self._codes.get(value)
            if code is not None and now >= code.expires_at:
                del self._codes[value]
                return None
            return code

    def redeem_code(self, value: str, now: float, config: SimulatorConfig) -> Issued:
        """Consume a checked code; a concurrent second redemption loses with invalid_grant."""
        with self._lock:
            code = self._codes.pop(value, None)
            if code is None:
                raise OAuthError("invalid_grant", "Authorization code is expired or invalid.")
            grant = Grant(
                grant_id=len(self._grants) + 1,
                client_key=code.client_key,
                account=code.account,
                scopes=code.scopes,
                refresh_token=self._token("rft."),
                refresh_expires_at=now + config.refresh_token_ttl,
            )
            self._grants[grant.grant_id] = grant
            self._refresh[grant.refresh_token] = grant.grant_id
            return self._issue_access(grant, now, config)

    def _issue_access(self, grant: Grant, now: float, config: SimulatorConfig) -> Issued:
        token = self._token("act.")
        self._access[token] = _AccessToken(grant.grant_id, now + config.access_token_ttl)
        remaining = max(0, int(grant.refresh_expires_at - now))
        return Issued(token, config.access_token_ttl, grant, remaining)

    def refresh(
        self, refresh_token: str, client_key: str, now: float, config: SimulatorConfig
    ) -> Issued:
        with self._lock:
            grant_id = self._refresh.get(refresh_token)
            grant = self._grants.get(grant_id) if grant_id is not None else None
            if grant is None or grant.revoked or grant.client_key != client_key:
                raise OAuthError("invalid_grant", "Refresh token is invalid or expired.")
            if now >= grant.refresh_expires_at:
                raise OAuthError("invalid_grant", "Refresh token is invalid or expired.")
            if config.refresh_extends_lifetime:
                grant = replace(grant, refresh_expires_at=now + config.refresh_token_ttl)
            if config.rotate_refresh_tokens:
                # The newer docs: the previous refresh token stops working once a new one exists.
                del self._refresh[refresh_token]
                grant = replace(grant, refresh_token=self._token("rft."))
                self._refresh[grant.refresh_token] = grant.grant_id
            self._grants[grant.grant_id] = grant
            return self._issue_access(grant, now, config)

    def authenticate(self, access_token: str, now: float) -> tuple[Grant, str] | None:
        """(grant, token) for a live access token; None if unknown, expired or revoked."""
        with self._lock:
            record = self._access.get(access_token)
            if record is None or now >= record.expires_at:
                return None
            grant = self._grants[record.grant_id]
            return None if grant.revoked else (grant, access_token)

    def revoke_token(self, access_token: str, client_key: str) -> None:
        with self._lock:
            record = self._access.get(access_token)
            grant = self._grants.get(record.grant_id) if record is not None else None
            if grant is None or grant.revoked or grant.client_key != client_key:
                raise OAuthError("invalid_request", "The access token is invalid.")
            self._revoke(grant)

    def _revoke(self, grant: Grant) -> None:
        self._grants[grant.grant_id] = replace(grant, revoked=True)
        self._refresh.pop(grant.refresh_token, None)

    def revoke_account(self, account: int) -> int:
        """Revoke every live grant of an account, as if the user disconnected; returns the count."""
        with self._lock:
            live = [g for g in self._grants.values() if g.account == account and not g.revoked]
            for grant in live:
                self._revoke(grant)
            return len(live)

    def expire_access_tokens(self, account: int | None, now: float) -> int:
        with self._lock:
            expired = 0
            for token, record in list(self._access.items()):
                grant = self._grants[record.grant_id]
                if (account is None or grant.account == account) and record.expires_at > now:
                    self._access[token] = replace(record, expires_at=now)
                    expired += 1
            return expired

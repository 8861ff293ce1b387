"""TikTok Login Kit OAuth v2: authorization URL, code exchange, refresh and revoke.

Token responses are flat JSON (no `data` wrapper). The HTTP status of OAuth errors is
undocumented (tiktok-api.md section 12.3), so an `error` key decides, whatever the status.
Lifetimes come from each response's `expires_in` / `refresh_expires_in`, never from constants:
the docs disagree (section 1.5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from resources.tiktok.apps import TikTokApp
from resources.tiktok.errors import (
    ContractViolation,
    NeedsReconnect,
    PermanentError,
    TikTokError,
    TransientError,
)
from resources.tiktok.scopes import BASIC, parse_scopes

DEFAULT_AUTH_BASE_URL = "https://www.tiktok.com"
DEFAULT_API_BASE_URL = "https://open.tiktokapis.com"
OAUTH_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
_TRANSIENT_OAUTH_ERRORS = {"server_error", "temporarily_unavailable"}
_SECRET_FORM_FIELDS = ("client_secret", "code", "code_verifier", "refresh_token", "token")


@dataclass(frozen=True)
class TokenGrant:
    """One token response; `issued_at` is when we received it (epoch seconds)."""

    open_id: str
    scopes: frozenset[str]
    expires_in: int
    refresh_expires_in: int
    issued_at: float
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @property
    def access_expires_at(self) -> float:
        return self.issued_at + self.expires_in

    @property
    def refresh_expires_at(self) -> float:
        return self.issued_at + self.refresh_expires_in


class OAuthClient:
    def __init__(
        self,
        app: TikTokApp,
        *,
        api_base_url: str = DEFAULT_API_BASE_URL,
        auth_base_url: str = DEFAULT_AUTH_BASE_URL,
        http: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._api = api_base_url.rstrip("/")
        self._auth = auth_base_url.rstrip("/")
        self._http = http or httpx.Client(timeout=OAUTH_TIMEOUT)
        self._now = now

    def authorization_url(
        self,
        *,
        scopes: frozenset[str],
        redirect_uri: str,
        state: str,
        code_challenge: str | None = None,
    ) -> str:
        query = {
            "client_key": self._app.client_key,
            "scope": ",".join(sorted(scopes | {BASIC})),
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
        }
        if code_challenge:
            query |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{self._auth}/v2/auth/authorize/?{urlencode(query)}"

    def exchange_code(
        self, code: str, *, redirect_uri: str, code_verifier: str | None = None
    ) -> TokenGrant:
        form = {"code": code, "grant_type": "authorization_code", "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return self._token_request(form)

    def refresh(self, refresh_token: str) -> TokenGrant:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, access_token: str) -> None:
        self._post("/v2/oauth/revoke/", {"token": access_token}, "oauth_revoke")

    def _token_request(self, form: dict[str, str]) -> TokenGrant:
        body = self._post("/v2/oauth/token/", form, "oauth_token")
        try:
            return TokenGrant(
                open_id=str(body["open_id"]),
                scopes=parse_scopes(body.get("scope")),
                expires_in=int(body["expires_in"]),
                refresh_expires_in=int(body["refresh_expires_in"]),
                issued_at=self._now(),
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ContractViolation(
                f"oauth_token: token response lacks or mistypes {err.__class__.__name__}: "
                f"{str(err)[:60]}",
                endpoint="oauth_token",
            ) from None

    def _post(self, path: str, form: dict[str, str], endpoint: str) -> dict:
        form = {"client_key": self._app.client_key, "client_secret": self._app.client_secret} | form
        try:
            response = self._http.post(
                self._api + path, data=form, headers={"Cache-Control": "no-cache"}
            )
        except httpx.TransportError as err:
            raise TransientError(
                f"{endpoint}: {type(err).__name__} talking to TikTok's OAuth endpoint",
                endpoint=endpoint,
            ) from None
        if not response.content.strip():
            if response.status_code < 400:
                return {}  # revoke answers an empty body on success
            raise TransientError(f"{endpoint}: HTTP {response.status_code}", endpoint=endpoint)
        try:
            body = json.loads(response.content)
        except ValueError:
            # Cut or garbled on the way, whatever the status: the token call is retried (bounded)
            # like any blip. If TikTok had already rotated the refresh token, the retry is refused
            # with invalid_grant, which is the truth: the grant we hold no longer works.
            raise TransientError(
                f"{endpoint}: answer is not JSON (HTTP {response.status_code}); it was cut or "
                "garbled on the way",
                endpoint=endpoint,
                status=response.status_code,
            ) from None
        if isinstance(body, dict) and body.get("error"):
            error = self._oauth_error(body, endpoint, response.status_code)
            # An error description may repeat the form: never let the secret or a token through.
            error.redact(*(form.get(name, "") for name in _SECRET_FORM_FIELDS))
            raise error
        if response.status_code >= 400 or not isinstance(body, dict):
            raise PermanentError(
                f"{endpoint}: unexpected HTTP {response.status_code}", endpoint=endpoint
            )
        return body

    def _oauth_error(self, body: dict, endpoint: str, status: int) -> TikTokError:
        code = str(body.get("error"))
        description = str(body.get("error_description") or "")[:200]
        log_id = body.get("log_id") if isinstance(body.get("log_id"), str) else None
        facts = {"endpoint": endpoint, "code": code, "log_id": log_id, "status": status}
        if code == "invalid_grant":
            return NeedsReconnect(
                f"TikTok refused the grant ({description or code}); the connection must be "
                f"authorized again",
                **facts,
            )
        if code in _TRANSIENT_OAUTH_ERRORS or status >= 500:
            return TransientError(f"{endpoint}: {code}: {description}", **facts)
        hint = ""
        if code == "invalid_client":
            hint = f" (check the client key and secret of TikTok app {self._app.name!r})"
        return PermanentError(f"{endpoint}: {code}: {description}{hint}", **facts)

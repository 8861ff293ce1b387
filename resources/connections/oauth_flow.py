"""The Login Kit authorization round trip: state, PKCE, the one-shot callback listener, the paste.

TikTok documents PKCE for desktop apps with a *hex* S256 challenge, while RFC 7636 (and clients that
work against TikTok's web flow) use base64url; whether web requires PKCE is unconfirmed
(tiktok-api.md section 12.2), so the variant is a choice, hex by default. The callback's `code`
contains characters such as `*` and `!` that arrive percent-encoded: it is URL-decoded once, here,
before the exchange.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from resources.tiktok.errors import TikTokError
from resources.tiktok.oauth import OAuthClient, TokenGrant
from resources.tiktok.scopes import parse_scopes

PkceVariant = Literal["hex", "base64url", "none"]
PKCE_VARIANTS: tuple[PkceVariant, ...] = ("hex", "base64url", "none")
DEFAULT_PORT = 8765
CALLBACK_PATH = "/callback/"
LISTEN_HOST = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
LISTENER_TIMEOUT_S = 300.0
LISTENER_POLL_S = 0.05
VERIFIER_BYTES = 48  # 64 characters from [A-Za-z0-9_-]: inside PKCE's 43..128 rule
_PAGE = (
    "<!doctype html><title>tiktok-crm-sync</title><p>{message} You can close this window and "
    "return to the terminal.</p>"
)


class AuthorizationError(RuntimeError):
    """The round trip failed; the message says what to do."""


class StateMismatch(AuthorizationError):
    pass


class ConsentDenied(AuthorizationError):
    pass


class RedirectMismatch(AuthorizationError):
    pass


class CallbackTimeout(AuthorizationError):
    pass


@dataclass(frozen=True)
class Pkce:
    variant: PkceVariant
    challenge: str
    verifier: str = field(repr=False)


def code_challenge(verifier: str, variant: PkceVariant) -> str:
    """S256 of the verifier: hex (TikTok desktop docs) or unpadded base64url (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    if variant == "hex":
        return digest.hex()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce(variant: PkceVariant) -> Pkce | None:
    if variant == "none":
        return None
    if variant not in PKCE_VARIANTS:
        raise ValueError(f"PKCE variant must be one of {', '.join(PKCE_VARIANTS)}, not {variant!r}")
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    return Pkce(variant, code_challenge(verifier, variant), verifier)


def default_redirect_uri(port: int) -> str:
    return f"http://{LISTEN_HOST}:{port}{CALLBACK_PATH}"


def check_redirect_uri(uri: str) -> str:
    """TikTok's registration rules that can be checked locally: absolute, static, no fragment."""
    parts = urlsplit(uri)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise RedirectMismatch(
            f"redirect URI {uri!r} must be an absolute http(s) URL, exactly as registered for "
            "the app on developers.tiktok.com"
        )
    if parts.query or parts.fragment:
        raise RedirectMismatch(
            f"redirect URI {uri!r} must have no query or fragment (TikTok registers static URIs)"
        )
    return uri


def listens_locally(uri: str) -> bool:
    """Whether this machine can receive the callback: loopback, http, with a port."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and parts.port is not None


@dataclass(frozen=True)
class Callback:
    scopes: frozenset[str]
    code: str = field(repr=False)


def parse_callback(url: str, redirect_uri: str, expected_state: str) -> Callback:
    """Check a callback URL against the request that started it; the code comes back decoded."""
    got, wanted = urlsplit(url.strip()), urlsplit(redirect_uri)
    if (got.scheme, got.netloc, got.path or "/") != (
        wanted.scheme,
        wanted.netloc,
        wanted.path or "/",
    ):
        raise RedirectMismatch(
            f"the callback arrived on {got.scheme}://{got.netloc}{got.path}, not on the redirect "
            f"URI {redirect_uri}: paste the full address the browser was sent to"
        )
    params = {key: values[0] for key, values in parse_qs(got.query).items()}
    if not hmac.compare_digest(params.get("state", "").encode(), expected_state.encode()):
        raise StateMismatch(
            "the callback's state does not match this authorization request (a stale browser tab, "
            "or a forged request): nothing was stored; run the command again"
        )
    error = params.get("error")
    if error == "access_denied":
        raise ConsentDenied(
            "the TikTok user declined the authorization: nothing was stored; run the command "
            "again and approve the access on TikTok's page"
        )
    if error:
        description = params.get("error_description", "")[:200]
        raise AuthorizationError(f"TikTok answered the authorization with {error}: {description}")
    if not params.get("code"):
        raise AuthorizationError("the callback carries no `code`: paste the full redirect address")
    return Callback(scopes=parse_scopes(params.get("scopes")), code=params["code"])


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    redirect_uri: str
    state: str = field(repr=False)
    pkce: Pkce | None = field(repr=False)


def start_authorization(
    oauth: OAuthClient, scopes: frozenset[str], redirect_uri: str, pkce: PkceVariant
) -> AuthorizationRequest:
    challenge = new_pkce(pkce)
    state = secrets.token_urlsafe(24)
    url = oauth.authorization_url(
        scopes=scopes,
        redirect_uri=check_redirect_uri(redirect_uri),
        state=state,
        code_challenge=challenge.challenge if challenge else None,
    )
    return AuthorizationRequest(url, redirect_uri, state, challenge)


def finish_authorization(
    oauth: OAuthClient, request: AuthorizationRequest, callback_url: str
) -> TokenGrant:
    """Verify the callback and exchange its code; the granted scopes are recorded either way."""
    callback = parse_callback(callback_url, request.redirect_uri, request.state)
    try:
        grant = oauth.exchange_code(
            callback.code,
            redirect_uri=request.redirect_uri,
            code_verifier=request.pkce.verifier if request.pkce else None,
        )
    except TikTokError as err:
        raise AuthorizationError(
            f"TikTok refused the authorization code ({err}); check that {request.redirect_uri} "
            "is registered exactly for this app, and try the other --pkce variant "
            "(hex or base64url) if TikTok mentions the code_verifier"
        ) from err
    # The token response's `scope` is authoritative; the callback's `scopes` fill in when absent.
    return grant if grant.scopes else dataclasses.replace(grant, scopes=callback.scopes)


class _OneShotServer(HTTPServer):
    callback_path: str
    received: str | None = None
    done: threading.Event


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _OneShotServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path != self.server.callback_path or self.server.done.is_set():
            self._answer(404, "This is not the authorization callback.")
            return
        self.server.received = self.path  # path and query; the host is the redirect URI's
        failed = "error=" in self.path
        self._answer(200, "Authorization failed." if failed else "Authorization received.")
        self.server.done.set()

    def _answer(self, status: int, message: str) -> None:
        body = _PAGE.format(message=message).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # the request line holds the authorization code: never log it


class CallbackListener:
    """One callback on 127.0.0.1:port; `port=0` picks a free port (tests)."""

    def __init__(self, port: int, path: str = CALLBACK_PATH) -> None:
        try:
            self._server = _OneShotServer((LISTEN_HOST, port), _CallbackHandler)
        except OSError as err:
            raise AuthorizationError(
                f"cannot listen on {LISTEN_HOST}:{port} for the callback ({err.strerror}); "
                "choose another --port (and register that redirect URI), or use --headless"
            ) from err
        self._server.callback_path = path
        self._server.done = threading.Event()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": LISTENER_POLL_S},
            name="oauth-callback",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def wait(self, timeout_s: float) -> str:
        """The callback's path and query, once it arrives."""
        if not self._server.done.wait(timeout_s) or self._server.received is None:
            raise CallbackTimeout(
                f"no authorization callback within {timeout_s:.0f} s: nothing was stored. If "
                "TikTok showed an error page, check that the redirect URI is registered exactly "
                "for the app; or run with --headless and paste the address"
            )
        return self._server.received

    @contextmanager
    def serving(self) -> Iterator[CallbackListener]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def authorize_with_listener(
    oauth: OAuthClient,
    scopes: frozenset[str],
    *,
    port: int,
    redirect_uri: str | None,
    pkce: PkceVariant,
    open_browser: Callable[[str], object],
    timeout_s: float = LISTENER_TIMEOUT_S,
) -> TokenGrant:
    """Listen, send the user to TikTok, take the one callback, exchange its code."""
    path = CALLBACK_PATH
    if redirect_uri is not None:
        if not listens_locally(check_redirect_uri(redirect_uri)):
            raise RedirectMismatch(
                f"the callback of {redirect_uri} cannot reach this machine (it needs "
                "http://127.0.0.1:PORT/... or http://localhost:PORT/...): use --headless and "
                "paste the address the browser lands on"
            )
        port, path = int(urlsplit(redirect_uri).port or 0), urlsplit(redirect_uri).path or "/"
    listener = CallbackListener(port, path)
    with listener.serving():
        uri = redirect_uri or default_redirect_uri(listener.port)
        request = start_authorization(oauth, scopes, uri, pkce)
        open_browser(request.url)
        received = listener.wait(timeout_s)
    parts = urlsplit(uri)
    return finish_authorization(oauth, request, f"{parts.scheme}://{parts.netloc}{received}")


def authorize_by_paste(
    oauth: OAuthClient,
    scopes: frozenset[str],
    *,
    redirect_uri: str,
    pkce: PkceVariant,
    ask: Callable[[str], str],
) -> TokenGrant:
    """Headless: `ask` shows the authorization URL and returns the pasted callback address."""
    request = start_authorization(oauth, scopes, redirect_uri, pkce)
    return finish_authorization(oauth, request, ask(request.url))

"""Login Kit: the consent page, the token endpoint and revoke (tiktok-api.md section 1).

The consent page is simulated by query parameters (`sim_account`, `sim_grant`, `sim_deny`), so a
browserless client can walk the real redirect round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlencode, urlsplit

from simulators.tiktok.auth import CODE_TTL_SECONDS, AuthCode, Issued
from simulators.tiktok.config import PkceEncoding, SimulatorConfig
from simulators.tiktok.responses import OAuthError, Reply, SimRequest, json_reply
from simulators.tiktok.state import SimState

SCOPES: tuple[str, ...] = (
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
    "video.publish",
    "video.upload",
)
ALWAYS_GRANTED = "user.info.basic"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
REDIRECT_MISMATCH = "Redirect_uri is not matched with the uri when requesting code."
PAGE_ERROR_STATUS = 400  # the consent page itself, not the API: always 400


def redirect_allowed(uri: str, config: SimulatorConfig) -> bool:
    """Registered exactly, or a desktop loopback URI, which must name a port."""
    if uri in config.redirect_uris:
        return True
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and parts.hostname in LOOPBACK_HOSTS
        and port is not None
        and not parts.fragment
    )


def parse_scopes(raw: str | list[str]) -> tuple[str, ...]:
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if not scopes or unknown:
        raise OAuthError("invalid_scope", f"Invalid scope: {','.join(unknown) or '(none)'}.")
    return scopes


def granted_scopes(requested: tuple[str, ...], chosen: str | None) -> tuple[str, ...]:
    """What the simulated user ticks: `chosen` within `requested`; user.info.basic always."""
    picked = requested if chosen is None else tuple(s for s in requested if s in chosen.split(","))
    return picked if ALWAYS_GRANTED in picked else (ALWAYS_GRANTED, *picked)


def issue_code(
    state: SimState,
    *,
    client_key: str,
    redirect_uri: str,
    account: int,
    scopes: tuple[str, ...],
    code_challenge: str | None,
    now: float,
) -> str:
    binding = AuthCode(
        client_key, redirect_uri, account, scopes, code_challenge, now + CODE_TTL_SECONDS
    )
    return state.auth.issue_code(binding)


def _redirect(uri: str, params: Mapping[str, str]) -> Reply:
    location = f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"
    return Reply(status=302, headers=(("Location", location),), content_type=None)


def authorize(state: SimState, request: SimRequest, now: float) -> Reply:
    config, query = state.config, request.query
    client_key, redirect_uri = query.get("client_key", ""), query.get("redirect_uri", "")
    if client_key not in config.apps:
        raise OAuthError("invalid_client", "Client key is invalid.", PAGE_ERROR_STATUS)
    if not redirect_allowed(redirect_uri, config):
        raise OAuthError("invalid_request", "redirect_uri is not registered.", PAGE_ERROR_STATUS)
    try:
        raw_account = query.get("sim_account", "0")
        account = state.catalog.resolve(int(raw_account) if raw_account.isdigit() else raw_account)
    except ValueError as err:
        raise OAuthError("invalid_request", str(err), PAGE_ERROR_STATUS) from err
    echo = {"state": query["state"]} if "state" in query else {}
    # Past this point the redirect URI is trusted, so errors travel back on it (RFC 6749 4.1.2.1).
    try:
        if query.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code.")
        scopes = parse_scopes(query.get("scope", ""))
        challenge = query.get("code_challenge") or None
        if challenge and query.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256.")
    except OAuthError as err:
        failure = {"error": err.error, "error_description": err.description}
        return _redirect(redirect_uri, {**failure, **echo})
    if query.get("sim_deny") == "1":
        denied = {"error": "access_denied", "error_description": "The user denied the request."}
        return _redirect(redirect_uri, {**denied, **echo})
    granted = granted_scopes(scopes, query.get("sim_grant"))
    code = issue_code(
        state,
        client_key=client_key,
        redirect_uri=redirect_uri,
        account=account,
        scopes=granted,
        code_challenge=challenge,
        now=now,
    )
    return _redirect(redirect_uri, {"code": code, "scopes": ",".join(granted), **echo})


def _form(request: SimRequest) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        raise OAuthError("invalid_request", f"Content-Type must be {FORM_CONTENT_TYPE}.")
    try:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as err:
        raise OAuthError("invalid_request", "The request body is not UTF-8.") from err
    return {key: values[0] for key, values in parsed.items()}


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"Missing required parameter: {name}.")
    return value


def _client_key(form: Mapping[str, str], config: SimulatorConfig) -> str:
    client_key, secret = _required(form, "client_key"), _required(form, "client_secret")
    expected = config.apps.get(client_key)
    if expected is None or not hmac.compare_digest(expected, secret):
        raise OAuthError("invalid_client", "Client key or secret is invalid.")
    return client_key


def pkce_matches(verifier: str, challenge: str, encoding: PkceEncoding) -> bool:
    """S256 in TikTok's desktop flavour (hex) and/or RFC 7636's (base64url)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    candidates: list[tuple[str, str]] = []
    if encoding in {"hex", "either"}:
        candidates.append((digest.hex(), challenge.lower()))
    if encoding in {"base64url", "either"}:
        candidates.append((base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), challenge))
    return any(hmac.compare_digest(expected, given) for expected, given in candidates)


def _token_payload(state: SimState, issued: Issued) -> dict[str, object]:
    return {
        "access_token": issued.access_token,
        "expires_in": issued.expires_in,
        "open_id": state.catalog.accounts[issued.grant.account].open_id,
        "refresh_expires_in": issued.refresh_expires_in,
        "refresh_token": issued.grant.refresh_token,
        "scope": ",".join(issued.grant.scopes),
        "token_type": "Bearer",
    }


def _exchange_code(state: SimState, form: Mapping[str, str], client_key: str, now: float) -> Issued:
    value, redirect_uri = _required(form, "code"), _required(form, "redirect_uri")
    code = state.auth.peek_code(value, now)
    if code is None or code.client_key != client_key:
        raise OAuthError("invalid_grant", "Authorization code is expired or invalid.")
    if redirect_uri != code.redirect_uri:
        raise OAuthError("invalid_grant", REDIRECT_MISMATCH)
    if code.code_challenge is not None:
        verifier = _required(form, "code_verifier")
        if not VERIFIER_PATTERN.fullmatch(verifier):
            raise OAuthError("invalid_request", "code_verifier is malformed.")
        if not pkce_matches(verifier, code.code_challenge, state.config.pkce):
            raise OAuthError("invalid_grant", "code_verifier does not match code_challenge.")
    return state.auth.redeem_code(value, now, state.config)


def token(state: SimState, request: SimRequest, now: float) -> Reply:
    form = _form(request)
    grant_type = _required(form, "grant_type")
    if grant_type not in {"authorization_code", "refresh_token", "client_credentials"}:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant_type}.")
    config = state.config
    client_key = _client_key(form, config)
    if grant_type == "client_credentials":
        client = {"access_token": state.auth.client_token(), "expires_in": 7_200}
        return json_reply(200, {**client, "token_type": "Bearer"})
    if grant_type == "authorization_code":
        issued = _exchange_code(state, form, client_key, now)
    else:
        issued = state.auth.refresh(_required(form, "refresh_token"), client_key, now, config)
        state.stats.refreshed()
    return json_reply(200, _token_payload(state, issued))


def revoke(state: SimState, request: SimRequest, now: float) -> Reply:
    del now  # revoking does not depend on time: an expired token can still be revoked
    form = _form(request)
    client_key = _client_key(form, state.config)
    state.auth.revoke_token(_required(form, "token"), client_key)
    return json_reply(200, {})

"""TikTok's `authorization.removed` webhook: verify the signature, mark the connection disconnected.

TikTok signs `"<t>.<raw body>"` with HMAC-SHA256 keyed by the app's client secret and sends
`TikTok-Signature: t=<unix>,s=<hex>` (tiktok-api.md section 9). The body names the app by
`client_key`, which selects the secret to check with; nothing is trusted before the check passes.
Delivery is at-least-once, so a second delivery is a no-op reported as such. The access token is
already revoked when the event arrives: the local tokens are deleted, the warehouse rows are kept
(`tiktok-crm-sync connections disconnect NAME --purge` removes them).

A web endpoint calls `handle_authorization_removed(body, headers, store, apps)`, answers 200 at
once on any outcome, and 401 on `WebhookRejected` (TikTok retries for up to 72 h).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from resources import settings
from resources.connections import audit
from resources.connections.audit import AuditLog
from resources.connections.store import DISCONNECTED, ConnectionStore
from resources.tiktok.apps import DEFAULT_APP, DEMO_APP, MissingSecret, TikTokApp, load_app

SIGNATURE_HEADER = "TikTok-Signature"
SIGNATURE_TOLERANCE_S = 300
AUTHORIZATION_REMOVED = "authorization.removed"
REASONS = {
    0: "unknown reason",
    1: "the user disconnected the app in TikTok",
    2: "the TikTok account was deleted",
    3: "the account holder's age changed",
    4: "the TikTok account was banned",
    5: "the app revoked the authorization",
}
_APP_KEY_VAR = re.compile(r"TIKTOK_(?:([A-Z][A-Z0-9_]*)_)?CLIENT_KEY")

Result = Literal["disconnected", "already_disconnected", "unknown_connection", "ignored_event"]


class WebhookRejected(ValueError):
    """Not a genuine, fresh TikTok delivery: answer 401 and change nothing."""


@dataclass(frozen=True)
class WebhookOutcome:
    result: Result
    detail: str
    connection: str | None = None


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The `TikTok-Signature` header TikTok would send (for tests and local replays)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},s={digest.hexdigest()}"


def verify_signature(
    header: str, body: bytes, secret: str, now: float, tolerance_s: float = SIGNATURE_TOLERANCE_S
) -> int:
    """Check the signature, then the timestamp's freshness; returns the signed timestamp."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    raw_t, signatures = fields.get("t", [""])[0], fields.get("s", [])
    if not raw_t.isdigit() or not signatures:
        raise WebhookRejected(f"{SIGNATURE_HEADER} must look like t=<unix seconds>,s=<hex>")
    expected = sign(body, secret, int(raw_t)).rpartition("s=")[2]
    if not any(hmac.compare_digest(expected, given.strip().lower()) for given in signatures):
        raise WebhookRejected(
            f"{SIGNATURE_HEADER} does not match the body: not signed with this app's client secret"
        )
    if abs(now - int(raw_t)) > tolerance_s:
        raise WebhookRejected(
            f"{SIGNATURE_HEADER} timestamp is {abs(now - int(raw_t)):.0f} s away from now "
            f"(tolerance {tolerance_s:.0f} s): a replay, or a clock out of sync"
        )
    return int(raw_t)


def configured_apps(environ: Mapping[str, str] = os.environ) -> list[TikTokApp]:
    """Every app with both credentials in the environment (plus `demo` in demo mode)."""
    apps = []
    for variable in sorted(environ):
        match = _APP_KEY_VAR.fullmatch(variable)
        if match:
            name = match.group(1).lower() if match.group(1) else DEFAULT_APP
            try:
                apps.append(load_app(name, environ))
            except (MissingSecret, ValueError):
                continue  # a key without its secret cannot verify anything
    if settings.mode(environ) == settings.MODE_DEMO:
        apps.append(load_app(DEMO_APP, environ))
    return apps


def handle_authorization_removed(
    body: bytes,
    headers: Mapping[str, str],
    store: ConnectionStore,
    apps: Iterable[TikTokApp],
    log: AuditLog | None = None,
    now: Callable[[], float] = time.time,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
    command: str = "webhook",
) -> WebhookOutcome:
    """Verify one delivery and disconnect the connection it names; idempotent on redelivery."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise WebhookRejected("the webhook body is not JSON") from err
    if not isinstance(payload, dict) or not isinstance(payload.get("client_key"), str):
        raise WebhookRejected("the webhook body has no `client_key`")
    app = next((a for a in apps if a.client_key == payload["client_key"]), None)
    if app is None:
        raise WebhookRejected(
            "the webhook's client_key belongs to no configured TikTok app: set that app's "
            "TIKTOK_<APP>_CLIENT_KEY and TIKTOK_<APP>_CLIENT_SECRET"
        )
    header = {key.lower(): value for key, value in headers.items()}.get(SIGNATURE_HEADER.lower())
    if not header:
        raise WebhookRejected(f"the {SIGNATURE_HEADER} header is missing")
    verify_signature(header, body, app.client_secret, now(), tolerance_s)
    if payload.get("event") != AUTHORIZATION_REMOVED:
        return WebhookOutcome("ignored_event", f"event {payload.get('event')!r} is not handled")
    open_id = payload.get("user_openid")
    connection = store.find(app.name, open_id) if isinstance(open_id, str) else None
    if connection is None:
        return WebhookOutcome("unknown_connection", f"no connection of app {app.name} has it")
    if connection.status == DISCONNECTED and not connection.has_tokens:
        return WebhookOutcome(
            "already_disconnected", "redelivery: nothing to do", connection=connection.name
        )
    reason = f"TikTok removed the authorization: {_reason(payload.get('content'))}"
    store.forget_tokens(connection.name, reason=reason)
    if log is not None:
        log.record(connection.name, audit.DEAUTHORIZED, command, detail=reason)
    return WebhookOutcome("disconnected", reason, connection=connection.name)


def _reason(content: object) -> str:
    """`content` is a JSON string such as '{"reason": 1 }'; anything else is an unknown reason."""
    try:
        code = json.loads(content)["reason"] if isinstance(content, str) else None
    except (ValueError, KeyError, TypeError):
        code = None
    if isinstance(code, int) and code in REASONS:
        return f"{REASONS[code]} (reason {code})"
    return REASONS[0]

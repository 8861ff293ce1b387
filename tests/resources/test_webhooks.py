"""TikTok's `authorization.removed` webhook: signed body -> verification -> connection disconnected.

Signature checks are pure (header, body, secret, now); the handler runs against a real store with a
connection in it, and is replayed to show a redelivery changes nothing.
"""

import json

import pytest

from resources.connections.audit import AuditLog
from resources.connections.store import ACTIVE, DISCONNECTED, ConnectionStore
from resources.connections.webhooks import (
    WebhookRejected,
    configured_apps,
    handle_authorization_removed,
    sign,
    verify_signature,
)
from resources.database import make_engine
from resources.tiktok.apps import TikTokApp
from resources.tiktok.oauth import TokenGrant

NOW = 1_800_000_000
SECRET = "sandbox-client-secret"
APPS = [TikTokApp("default", "awlivekey", "live-secret"), TikTokApp("sandbox", "sbawkey", SECRET)]


def payload(**overrides) -> bytes:
    """Shaped like the documented example (tiktok-api.md section 9)."""
    body = {
        "client_key": "sbawkey",
        "event": "authorization.removed",
        "create_time": NOW - 5,
        "user_openid": "-000creator",
        "content": '{"reason": 1 }',
    } | overrides
    return json.dumps(body).encode()


@pytest.fixture
def store(tmp_path):
    store = ConnectionStore(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    grant = TokenGrant(
        "-000creator", frozenset({"user.info.basic"}), 86_400, 31_536_000, NOW, "act.x!", "rft.x!"
    )
    store.save_grant("creator-1", "sandbox", grant)
    return store


def deliver(store, body: bytes, header: str | None = None, log=None):
    headers = {"tiktok-signature": header or sign(body, SECRET, NOW)}  # any header case works
    return handle_authorization_removed(body, headers, store, APPS, log, now=lambda: NOW)


def test_signature_of_t_dot_body_verifies_and_returns_its_timestamp():
    body = payload()
    assert verify_signature(sign(body, SECRET, NOW), body, SECRET, now=NOW + 10) == NOW


@pytest.mark.parametrize(
    ("header", "body", "now", "reason"),
    [
        # the body changed after signing
        (sign(b'{"a":1}', SECRET, NOW), b'{"a":2}', NOW, "does not match"),
        # signed with another app's secret
        (sign(b"{}", "live-secret", NOW), b"{}", NOW, "does not match"),
        # a replay from ten minutes ago
        (sign(b"{}", SECRET, NOW - 600), b"{}", NOW, "away from now"),
        # no timestamp, or no signature
        ("s=abcdef", b"{}", NOW, "must look like"),
        (f"t={NOW}", b"{}", NOW, "must look like"),
    ],
)
def test_bad_signatures_are_rejected(header, body, now, reason):
    with pytest.raises(WebhookRejected, match=reason):
        verify_signature(header, body, SECRET, now=now)


def test_authorization_removed_disconnects_once_and_redelivery_is_a_no_op(store, tmp_path):
    log = AuditLog(store.engine)
    first = deliver(store, payload(), log=log)
    assert (first.result, first.connection) == ("disconnected", "creator-1")
    connection = store.get("creator-1")
    assert connection.status == DISCONNECTED and not connection.has_tokens
    assert "the user disconnected the app in TikTok (reason 1)" in connection.status_reason
    again = deliver(store, payload(), log=log)
    assert again.result == "already_disconnected"
    assert [e.event for e in log.events("creator-1")] == ["deauthorized"]


def test_a_bad_signature_changes_nothing(store):
    body = payload()
    with pytest.raises(WebhookRejected):
        deliver(store, body, header=sign(body, "guessed-secret", NOW))
    assert store.get("creator-1").status == ACTIVE


def test_unknown_client_key_is_rejected_and_unknown_user_reported(store):
    with pytest.raises(WebhookRejected, match="no configured TikTok app"):
        deliver(store, payload(client_key="someone-else"))
    assert deliver(store, payload(user_openid="-000stranger")).result == "unknown_connection"
    assert deliver(store, payload(event="video.publish.complete")).result == "ignored_event"
    assert store.get("creator-1").status == ACTIVE


def test_missing_header_or_non_json_body_is_rejected(store):
    with pytest.raises(WebhookRejected, match="header is missing"):
        handle_authorization_removed(payload(), {}, store, APPS, now=lambda: NOW)
    with pytest.raises(WebhookRejected, match="not JSON"):
        deliver(store, b"<html>")


def test_configured_apps_come_from_the_environment_variables():
    environ = {
        "TIKTOK_CLIENT_KEY": "k1",
        "TIKTOK_CLIENT_SECRET": "s1",
        "TIKTOK_SANDBOX_CLIENT_KEY": "k2",
        "TIKTOK_SANDBOX_CLIENT_SECRET": "s2",
        "TIKTOK_HALF_CLIENT_KEY": "k3",  # no secret: cannot verify, left out
    }
    assert [(a.name, a.client_key) for a in configured_apps(environ)] == [
        ("default", "k1"),
        ("sandbox", "k2"),
    ]

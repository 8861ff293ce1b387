"""Token lifecycle against the state database: refresh ahead of expiry, rotation, reconnect.

Round trip: `ConnectionTokens` -> a fake rotating OAuth endpoint -> `ConnectionStore` (SQLite).
"""

import threading

import pytest
from sqlalchemy.exc import OperationalError

from resources.connections.store import NEEDS_RECONNECT, ConnectionStore
from resources.connections.tokens import REFRESH_MARGIN_S, ConnectionTokens
from resources.database import make_engine
from resources.tiktok.errors import NeedsReconnect
from resources.tiktok.oauth import TokenGrant

NOW = 1_800_000_000.0


def grant(n: int, expires_in: int = 7200) -> TokenGrant:
    return TokenGrant(
        open_id="-000abc",
        scopes=frozenset({"user.info.basic", "video.list"}),
        expires_in=expires_in,
        refresh_expires_in=15_552_000,
        issued_at=NOW,
        access_token=f"act.{n}!",
        refresh_token=f"rft.{n}!",
    )


class RotatingOAuth:
    """Like TikTok with rotation: each refresh token works once."""

    def __init__(self) -> None:
        self.valid = {"rft.1!"}
        self.calls = 0
        self.lock = threading.Lock()

    def refresh(self, refresh_token: str) -> TokenGrant:
        with self.lock:
            self.calls += 1
            if refresh_token not in self.valid:
                raise NeedsReconnect("invalid_grant", code="invalid_grant")
            self.valid.discard(refresh_token)
            n = int(refresh_token[4:-1]) + 1
            self.valid.add(f"rft.{n}!")
            return grant(n)


@pytest.fixture
def store(tmp_path):
    store = ConnectionStore(make_engine(f"sqlite:///{tmp_path / 'state.db'}"), now=lambda: NOW)
    store.save_grant("creator-1", "default", grant(1))
    return store


def test_fresh_token_is_used_as_is(store):
    oauth = RotatingOAuth()
    assert ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW).access_token() == "act.1!"
    assert oauth.calls == 0


def test_token_is_refreshed_ahead_of_expiry_from_expires_in(store):
    oauth = RotatingOAuth()
    almost_expired = NOW + 7200 - REFRESH_MARGIN_S + 1
    tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: almost_expired)
    assert tokens.access_token() == "act.2!"
    stored = store.get("creator-1")
    assert (stored.refresh_token, stored.token_version) == ("rft.2!", 2)


def test_concurrent_refreshes_burn_no_refresh_token(store):
    oauth = RotatingOAuth()
    results: list[str] = []

    def worker() -> None:
        tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW)
        results.append(tokens.refresh("act.1!"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"act.2!"}
    assert oauth.calls == 1
    assert store.get("creator-1").refresh_token in oauth.valid


def test_refresh_rotated_by_another_process_is_picked_up(store):
    oauth = RotatingOAuth()
    other_process = ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW)
    stale_view = store.get("creator-1")
    other_process.refresh("act.1!")  # rotates rft.1 -> rft.2 and stores it
    # This process still holds act.1 and rft.1; TikTok now refuses rft.1.
    assert oauth.refresh.__self__.valid == {"rft.2!"}
    assert stale_view.refresh_token == "rft.1!"
    mine = ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW)
    assert mine.refresh("act.1!") == "act.2!"
    assert store.get("creator-1").status == "active"


def test_invalid_grant_marks_needs_reconnect_with_the_command(store):
    oauth = RotatingOAuth()
    oauth.valid.clear()  # the user revoked the app
    tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW)
    with pytest.raises(NeedsReconnect, match="connections reconnect creator-1"):
        tokens.refresh("act.1!")
    stored = store.get("creator-1")
    assert stored.status == NEEDS_RECONNECT
    assert "reconnect creator-1" in stored.status_reason


def test_tokens_never_show_in_repr(store):
    assert "act.1!" not in repr(store.get("creator-1"))
    assert "rft.1!" not in repr(grant(1))


def test_short_lifetimes_refresh_near_their_end_not_on_every_call(store):
    oauth = RotatingOAuth()
    clock = [NOW + 7200 - 1]  # the stored token is about to expire
    tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: clock[0])
    tokens._oauth.refresh = lambda refresh_token: grant(2, expires_in=60)  # a 1-minute token
    assert tokens.access_token() == "act.2!"
    assert store.get("creator-1").access_expires_at == NOW + 60
    # The margin follows the 60 s lifetime (a tenth of it), not the fixed 5 minutes.
    clock[0] = NOW + 30
    assert tokens.access_token() == "act.2!"
    assert tokens.refresh_calls == 1


def test_a_connection_already_marked_needs_reconnect_is_not_refreshed_again(store):
    oauth = RotatingOAuth()
    store.set_status("creator-1", NEEDS_RECONNECT, "revoked; run reconnect creator-1")
    tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW)
    with pytest.raises(NeedsReconnect, match="reconnect creator-1"):
        tokens.refresh("act.1!")
    assert oauth.calls == 0


def test_the_rotated_refresh_token_is_stored_even_if_the_first_write_fails(store, monkeypatch):
    oauth = RotatingOAuth()
    real = store.replace_tokens
    failures = iter([OperationalError("UPDATE", {}, Exception("database is locked"))])

    def flaky(*args, **kwargs):
        for failure in failures:
            raise failure
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "replace_tokens", flaky)
    tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: NOW)
    assert tokens.refresh("act.1!") == "act.2!"
    assert store.get("creator-1").refresh_token == "rft.2!"  # TikTok's only valid one is kept


def test_the_token_is_read_from_the_store_once_not_per_request(store, monkeypatch):
    tokens = ConnectionTokens(store, "creator-1", RotatingOAuth(), now=lambda: NOW)
    reads = []
    real_get = store.get
    monkeypatch.setattr(store, "get", lambda name: reads.append(name) or real_get(name))
    for _ in range(5):
        assert tokens.access_token() == "act.1!"
    assert reads == ["creator-1"]


def test_a_token_that_expired_while_a_request_queued_is_refreshed_not_reported(store):
    oauth = RotatingOAuth()
    clock = [NOW]
    tokens = ConnectionTokens(store, "creator-1", oauth, now=lambda: clock[0])
    assert tokens.access_token() == "act.1!"
    clock[0] = NOW + 7200 + 600  # the request waited in the budget past the token's expiry
    assert tokens.access_token() == "act.2!"  # asked again just before sending: refreshed
    assert tokens.refresh_calls == oauth.calls == 1
    assert store.get("creator-1").status == "active"

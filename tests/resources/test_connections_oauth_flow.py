"""Login Kit round trip against the simulator: authorization URL -> consent -> 302 -> listener on
127.0.0.1 -> state check -> URL-decoded code -> token exchange (with PKCE) -> grant.

The "browser" is an httpx client that follows the simulator's redirect to the one-shot listener,
with the simulator's consent knobs (`sim_grant`, `sim_deny`) appended to the authorization URL.
"""

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from resources.connections.oauth_flow import (
    AuthorizationError,
    CallbackTimeout,
    ConsentDenied,
    RedirectMismatch,
    StateMismatch,
    authorize_by_paste,
    authorize_with_listener,
    code_challenge,
    parse_callback,
)
from resources.tiktok.apps import load_app
from resources.tiktok.oauth import OAuthClient
from tests.pipelines.helpers import use_live_app

ALL = frozenset({"user.info.basic", "user.info.profile", "user.info.stats", "video.list"})
# RFC 7636 appendix B: the verifier and its base64url S256 challenge.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture
def oauth(simulator):
    use_live_app(simulator)
    return OAuthClient(
        load_app("default"), api_base_url=simulator.base_url, auth_base_url=simulator.base_url
    )


class Browser:
    """Follows the authorization URL like a user's browser; `extra` plays the consent page."""

    def __init__(self, extra: str = "", tamper=None) -> None:
        self.extra, self.tamper, self.seen = extra, tamper or (lambda url: url), []

    def __call__(self, url: str) -> None:
        url = self.tamper(url + self.extra)
        self.seen.append(url)
        with httpx.Client(timeout=10.0, follow_redirects=True) as http:
            self.response = http.get(url)


def listen(oauth, browser, scopes=ALL, pkce="hex", **kwargs):
    options = {"port": 0, "redirect_uri": None, "timeout_s": 10.0} | kwargs
    return authorize_with_listener(oauth, scopes, pkce=pkce, open_browser=browser, **options)


def test_pkce_challenges_in_both_encodings():
    assert code_challenge(RFC_VERIFIER, "base64url") == RFC_CHALLENGE
    hex_challenge = code_challenge(RFC_VERIFIER, "hex")
    assert len(hex_challenge) == 64 and int(hex_challenge, 16) > 0


@pytest.mark.parametrize(
    ("server_expects", "we_send"),
    [("hex", "hex"), ("base64url", "base64url"), ("either", "none")],
)
def test_listener_round_trip_with_each_pkce_variant(simulator, oauth, server_expects, we_send):
    simulator.set(pkce=server_expects)
    browser = Browser()
    grant = listen(oauth, browser, pkce=we_send)
    assert grant.open_id == simulator.accounts[0].open_id
    assert grant.scopes == ALL
    sent = parse_qs(urlsplit(browser.seen[0]).query)
    assert sent["scope"] == [",".join(sorted(ALL))]  # comma-separated, basic included
    assert ("code_challenge" in sent) is (we_send != "none")
    # The browser was sent back to our listener with a code holding `*` and `!`, percent-encoded.
    assert "%2A" in str(browser.response.request.url)
    assert browser.response.status_code == 200


def test_the_wrong_pkce_variant_is_refused_with_a_hint(simulator, oauth):
    simulator.set(pkce="hex")
    with pytest.raises(AuthorizationError, match="other --pkce variant"):
        listen(oauth, Browser(), pkce="base64url")


def test_partial_consent_records_the_scopes_granted(oauth):
    grant = listen(oauth, Browser("&sim_grant=user.info.basic,video.list&sim_account=2"))
    assert grant.scopes == frozenset({"user.info.basic", "video.list"})


def test_denied_consent_stores_nothing_and_says_so(oauth):
    with pytest.raises(ConsentDenied, match="declined"):
        listen(oauth, Browser("&sim_deny=1"))


def test_a_state_that_does_not_match_is_rejected(oauth):
    def forge(url: str) -> str:
        query = parse_qs(urlsplit(url).query)
        return url.replace(f"state={query['state'][0]}", "state=attacker-chosen")

    with pytest.raises(StateMismatch, match="does not match"):
        listen(oauth, Browser(tamper=forge))


def test_a_code_issued_for_another_redirect_uri_is_refused_by_tiktok(simulator, oauth):
    # A code minted for a different redirect URI, delivered to our callback with our state.
    foreign = simulator.authorize(
        0,
        "user.info.basic",
        "http://127.0.0.1:9/elsewhere/",
        client_key=load_app("default").client_key,
    )

    def paste(url: str) -> str:
        query = parse_qs(urlsplit(url).query)
        return f"{query['redirect_uri'][0]}?code={foreign}&state={query['state'][0]}"

    with pytest.raises(AuthorizationError, match="not matched") as caught:
        authorize_by_paste(
            oauth, ALL, redirect_uri="http://127.0.0.1:8765/callback/", pkce="none", ask=paste
        )
    assert "registered exactly" in str(caught.value)


def test_a_callback_on_another_address_is_a_redirect_mismatch():
    with pytest.raises(RedirectMismatch, match="not on the redirect URI"):
        parse_callback(
            "http://127.0.0.1:9999/other/?code=x&state=s", "http://127.0.0.1:8765/callback/", "s"
        )


def test_a_redirect_uri_the_listener_cannot_receive_needs_headless(oauth):
    with pytest.raises(RedirectMismatch, match="--headless"):
        listen(oauth, Browser(), redirect_uri="https://app.example.com/tiktok/callback")


def test_an_unregistered_redirect_uri_ends_in_a_timeout_that_says_what_to_check(simulator, oauth):
    # TikTok (the simulator) shows an error page instead of redirecting: no callback ever comes.
    browser = Browser(tamper=lambda url: url.replace("127.0.0.1%3A", "evil.example%3A"))
    with pytest.raises(CallbackTimeout, match="registered exactly"):
        listen(oauth, browser, timeout_s=0.0)
    assert browser.response.status_code == 400


def test_callback_code_is_url_decoded_once():
    callback = parse_callback(
        "http://127.0.0.1:8765/callback/?code=abc%2A0%216410&scopes=user.info.basic%2Cvideo.list"
        "&state=s1",
        "http://127.0.0.1:8765/callback/",
        "s1",
    )
    assert callback.code == "abc*0!6410"
    assert callback.scopes == frozenset({"user.info.basic", "video.list"})


def test_headless_paste_of_the_redirect_address(simulator, oauth):
    def paste(url: str) -> str:
        with httpx.Client(timeout=10.0) as http:
            return http.get(url + "&sim_account=1").headers["location"]

    grant = authorize_by_paste(
        oauth, ALL, redirect_uri="http://127.0.0.1:8765/callback/", pkce="base64url", ask=paste
    )
    assert grant.open_id == simulator.accounts[1].open_id

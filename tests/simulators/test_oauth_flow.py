"""Round trip: consent page (302 callback) -> POST /v2/oauth/token/ -> GET /v2/user/info/.

Covers the URL-decoding trap of codes with `*` and `!`, redirect URI rules, denial, partial
grants, PKCE in both encodings, and the OAuth error shape of tiktok-api.md section 1.8.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from simulators.tiktok import DEMO_CLIENT_KEY
from tests.simulators.conftest import StartSim
from tests.simulators.harness import REDIRECT_URI, Harness, bearer, callback_params

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk0123456789"
TOKEN_KEYS = {
    "access_token",
    "expires_in",
    "open_id",
    "refresh_expires_in",
    "refresh_token",
    "scope",
    "token_type",
}


def hex_challenge(verifier: str) -> str:
    return hashlib.sha256(verifier.encode()).hexdigest()


def base64url_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def assert_oauth_error(response: object, error: str, status: int = 400) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description", "log_id"}
    assert body["error"] == error
    return body


def test_happy_path_code_needs_url_decoding(harness: Harness) -> None:
    page = harness.authorize_page()
    raw_location = page.headers["location"]
    params = callback_params(page)
    code = params["code"]
    # The decoded code has the documented special characters; on the wire they are escaped.
    assert "*" in code and "!" in code
    assert "%2A" in raw_location and "%21" in raw_location
    assert raw_location.startswith(REDIRECT_URI + "?")
    assert params["state"] == "csrf-123"
    assert params["scopes"] == "user.info.basic,user.info.profile,user.info.stats,video.list"

    still_encoded = code.replace("*", "%2A").replace("!", "%21")
    assert_oauth_error(harness.exchange(still_encoded), "invalid_grant")

    token = harness.exchange(code)
    assert token.status_code == 200
    body = token.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86_400 and body["refresh_expires_in"] == 31_536_000
    assert body["access_token"].startswith("act.") and "!" in body["access_token"]
    assert body["refresh_token"].startswith("rft.")
    assert body["scope"] == params["scopes"]
    assert body["open_id"] == harness.sim.accounts[0].open_id

    info = harness.user_info(body["access_token"], "open_id,display_name")
    assert info.status_code == 200
    assert info.json()["data"]["user"]["open_id"] == body["open_id"]


def test_code_is_single_use_and_expires(harness: Harness) -> None:
    code = harness.sim.authorize(0, "user.info.basic", REDIRECT_URI)
    assert harness.exchange(code).status_code == 200
    assert_oauth_error(harness.exchange(code), "invalid_grant")

    late = harness.sim.authorize(0, "user.info.basic", REDIRECT_URI)
    harness.clock.advance(601)  # codes live 10 minutes
    assert_oauth_error(harness.exchange(late), "invalid_grant")


def test_redirect_uri_must_match_the_authorize_one(harness: Harness) -> None:
    code = harness.sim.authorize(0, "user.info.basic", REDIRECT_URI)
    body = assert_oauth_error(
        harness.exchange(code, "http://127.0.0.1:8765/other"), "invalid_grant"
    )
    assert body["error_description"] == (
        "Redirect_uri is not matched with the uri when requesting code."
    )
    # A failed attempt does not burn the code.
    assert harness.exchange(code).status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://example.com/callback",  # not registered
        "http://127.0.0.1/callback",  # desktop rule: a port is required
        "http://localhost/callback",
        "ftp://127.0.0.1:21/callback",
    ],
)
def test_authorize_rejects_unregistered_redirects(harness: Harness, redirect_uri: str) -> None:
    assert_oauth_error(harness.authorize_page(redirect_uri=redirect_uri), "invalid_request")


def test_registered_redirect_and_localhost_port_are_accepted(start_sim: StartSim) -> None:
    harness = start_sim(redirect_uris=("https://crm.example.com/tiktok/callback",))
    for uri in ("https://crm.example.com/tiktok/callback", "https://localhost:3000/cb"):
        params = callback_params(harness.authorize_page(redirect_uri=uri))
        assert harness.exchange(params["code"], uri).status_code == 200


def test_unknown_client_key_is_rejected(harness: Harness) -> None:
    assert_oauth_error(harness.authorize_page(client_key="sbawnotregistered"), "invalid_client")


def test_user_denies_consent(harness: Harness) -> None:
    params = callback_params(harness.authorize_page(sim_deny="1"))
    assert params["error"] == "access_denied"
    assert params["state"] == "csrf-123"
    assert "code" not in params and params["error_description"]


def test_partial_grant_and_account_choice(harness: Harness) -> None:
    second = harness.sim.accounts[1]
    page = harness.authorize_page(sim_grant="video.list", sim_account=second.open_id)
    params = callback_params(page)
    # user.info.basic is always granted; the profile and stats scopes were unticked.
    assert params["scopes"] == "user.info.basic,video.list"
    body = harness.exchange(params["code"]).json()
    assert body["scope"] == "user.info.basic,video.list"
    assert body["open_id"] == second.open_id


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_key": "sbawunknown"}, "invalid_client"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),  # no code
    ],
)
def test_token_endpoint_errors(harness: Harness, form: dict[str, str], error: str) -> None:
    assert_oauth_error(harness.token(**{"grant_type": "refresh_token", **form}), error)


def test_token_endpoint_wants_a_form(harness: Harness) -> None:
    response = harness.client.post("/v2/oauth/token/", json={"grant_type": "refresh_token"})
    assert_oauth_error(response, "invalid_request")


def test_oauth_error_status_knob(start_sim: StartSim) -> None:
    harness = start_sim(oauth_error_status=200)
    assert_oauth_error(harness.token(grant_type="password"), "unsupported_grant_type", 200)


@pytest.mark.parametrize("challenge", [hex_challenge, base64url_challenge])
def test_pkce_accepts_both_encodings(harness: Harness, challenge: object) -> None:
    page = harness.authorize_page(code_challenge=challenge(VERIFIER), code_challenge_method="S256")
    code = callback_params(page)["code"]
    assert_oauth_error(harness.exchange(code), "invalid_request")  # verifier missing
    wrong = "x" * 43
    assert_oauth_error(harness.exchange(code, code_verifier=wrong), "invalid_grant")
    assert harness.exchange(code, code_verifier=VERIFIER).status_code == 200


@pytest.mark.parametrize(
    ("pkce", "accepted", "rejected"),
    [
        ("hex", hex_challenge, base64url_challenge),
        ("base64url", base64url_challenge, hex_challenge),
    ],
)
def test_pkce_knob_restricts_the_encoding(
    start_sim: StartSim, pkce: str, accepted: object, rejected: object
) -> None:
    harness = start_sim(pkce=pkce)
    good = harness.sim.authorize(
        0, "user.info.basic", REDIRECT_URI, code_challenge=accepted(VERIFIER)
    )
    bad = harness.sim.authorize(
        0, "user.info.basic", REDIRECT_URI, code_challenge=rejected(VERIFIER)
    )
    assert harness.exchange(good, code_verifier=VERIFIER).status_code == 200
    assert_oauth_error(harness.exchange(bad, code_verifier=VERIFIER), "invalid_grant")


def test_authorize_shortcut_validates_its_inputs(harness: Harness) -> None:
    with pytest.raises(ValueError, match="client_key"):
        harness.sim.authorize(0, "user.info.basic", REDIRECT_URI, client_key="nope")
    with pytest.raises(ValueError, match="scope"):
        harness.sim.authorize(0, "user.info.everything", REDIRECT_URI)
    with pytest.raises(ValueError, match="account"):
        harness.sim.authorize(99, "user.info.basic", REDIRECT_URI)


def test_client_credentials_token_cannot_read_display_data(harness: Harness) -> None:
    body = harness.token(grant_type="client_credentials").json()
    assert body["access_token"].startswith("clt.") and body["expires_in"] == 7_200
    response = harness.client.get(
        "/v2/user/info/", params={"fields": "open_id"}, headers=bearer(body["access_token"])
    )
    assert response.status_code == 401


def test_demo_key_is_a_sandbox_key() -> None:
    assert DEMO_CLIENT_KEY.startswith("sbaw")

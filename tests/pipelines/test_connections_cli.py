"""`tiktok-crm-sync connections ...` end to end on the simulator, through the click entry point.

Round trips: connect (browser -> simulator consent -> listener -> exchange -> encrypted store) ->
list -> reconnect in place; import from a YAML file -> the next Dagster run syncs it; disconnect
(revoke at the simulator, tokens deleted) with --purge (warehouse rows gone, audit kept);
the authorization.removed webhook; key rotation. No real TikTok host, no real browser.
"""

import json
import os
import re
import socket
import time
import webbrowser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from click.testing import CliRunner
from cryptography.fernet import Fernet
from rich.cells import cell_len

from pipelines.cli import main
from resources.connections.audit import AuditLog
from resources.connections.store import Connection, ConnectionStore
from resources.connections.webhooks import sign
from resources.tiktok.apps import load_app
from resources.tiktok.errors import NeedsReconnect
from resources.tiktok.oauth import OAuthClient
from tests.pipelines.helpers import (
    ALL_SCOPES,
    REDIRECT_URI,
    TEST_CLIENT_SECRET,
    Harness,
    connect,
    use_live_app,
)


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    os.environ["TIKTOK_API_BASE_URL"] = os.environ["TIKTOK_AUTH_BASE_URL"] = simulator.base_url
    os.environ["STATE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'state.db'}"
    os.environ["WAREHOUSE_URL"] = harness.warehouse_url
    return harness


def cli(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["connections", *args], input=input)


def browse_as(monkeypatch, extra: str) -> None:
    """The user's browser: follows TikTok's redirect back to the listener; `extra` is consent."""

    def open_browser(url: str) -> None:
        with httpx.Client(timeout=10.0, follow_redirects=True) as http:
            http.get(url + extra)

    monkeypatch.setattr(webbrowser, "open", open_browser)


def listed() -> dict[str, dict]:
    result = cli("list", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_connect_list_and_reconnect_in_place(harness, monkeypatch):
    browse_as(monkeypatch, "&sim_account=0&sim_grant=user.info.basic,user.info.profile,video.list")
    result = cli("connect", "creator-1", "--port", "0")
    assert result.exit_code == 0, result.output
    assert "not granted: user.info.stats (follower_count" in result.stderr
    row = listed()["creator-1"]
    assert row["status"] == "active" and row["app"] == "default"
    assert row["scopes"] == ["user.info.basic", "user.info.profile", "video.list"]
    assert row["refresh_token_expires_at"] and row["refresh_warning"] is None
    before = harness.store.get("creator-1")

    browse_as(monkeypatch, "&sim_account=0")
    result = cli("reconnect", "creator-1", "--port", "0", "--pkce", "base64url")
    assert result.exit_code == 0, result.output
    after = harness.store.get("creator-1")
    assert (after.open_id, after.token_version) == (before.open_id, before.token_version + 1)
    assert after.access_token != before.access_token
    events = [e.event for e in AuditLog(harness.store.engine).events("creator-1")]
    assert events == ["connected", "reconnected"]


def test_connect_refuses_to_overwrite_mix_or_duplicate_connections(harness, monkeypatch):
    browse_as(monkeypatch, "&sim_account=0")
    assert cli("connect", "creator-1", "--port", "0").exit_code == 0
    again = cli("connect", "creator-1", "--port", "0")
    assert again.exit_code == 1 and "connections reconnect creator-1" in again.stderr
    twin = cli("connect", "creator-2", "--port", "0")
    assert twin.exit_code == 1 and "already connection 'creator-1'" in twin.stderr
    browse_as(monkeypatch, "&sim_account=1")
    other = cli("reconnect", "creator-1", "--port", "0")
    assert other.exit_code == 1 and "belongs to another TikTok account" in other.stderr
    assert harness.store.names() == ["creator-1"]


def test_denied_consent_stores_nothing(harness, monkeypatch):
    browse_as(monkeypatch, "&sim_deny=1")
    result = cli("connect", "creator-1", "--port", "0")
    assert result.exit_code == 1 and "declined" in result.stderr
    assert harness.store.names(status=None) == []


def test_disconnect_revokes_deletes_tokens_and_purges_only_that_connection(harness, simulator):
    for index, name in enumerate(["creator-1", "creator-2"]):
        connect(simulator, harness.store, name, account=index)
        assert harness.sync(name).success
    refresh_token = harness.store.get("creator-1").refresh_token
    result = cli("disconnect", "creator-1", "--purge", "--yes")
    assert result.exit_code == 0, result.output
    assert "revoked the authorization of creator-1" in result.stderr
    connection = harness.store.get("creator-1")
    assert connection.status == "disconnected" and not connection.has_tokens
    with pytest.raises(NeedsReconnect):  # TikTok (the simulator) no longer honours the grant
        OAuthClient(load_app("default"), api_base_url=simulator.base_url).refresh(refresh_token)
    tables = ["tiktok_profiles", "tiktok_videos", "tiktok_video_metrics_daily", "crm_contacts"]
    for table in tables:
        assert harness.warehouse.count(table, connection_name="creator-1") == 0
        assert harness.warehouse.count(table, connection_name="creator-2") > 0
    purged = {
        e.warehouse_table: e.rows_removed
        for e in AuditLog(harness.store.engine).events("creator-1")
        if e.warehouse_table
    }
    assert purged["tiktok_videos"] == 45 and purged["tiktok_profiles"] == 1
    assert "purged 45 rows from tiktok_videos" in result.stderr


def test_disconnect_goes_on_when_tiktok_already_revoked(harness, simulator):
    connect(simulator, harness.store, "creator-1", account=0)
    simulator.revoke_account(0)  # the user removed the app in TikTok first
    result = cli("disconnect", "creator-1")
    assert result.exit_code == 0, result.output
    assert "not revoked at TikTok" in result.stderr and "tokens are deleted" in result.stderr
    assert not harness.store.get("creator-1").has_tokens


def real_tokens(simulator, account: int) -> dict:
    """Tokens as another tool would hold them: from a real code exchange with the simulator."""
    app = load_app("default")
    code = simulator.authorize(account, ALL_SCOPES, REDIRECT_URI, client_key=app.client_key)
    grant = OAuthClient(app, api_base_url=simulator.base_url).exchange_code(
        code, redirect_uri=REDIRECT_URI
    )
    return {
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "open_id": grant.open_id,
    }


def test_an_imported_connection_syncs_in_the_next_run(harness, simulator, tmp_path):
    full = {
        "name": "imported-1",
        **real_tokens(simulator, 0),
        "scopes": ALL_SCOPES,
        "expires_in": 86_400,
        "refresh_expires_in": 3 * 86_400,
        "app": "default",
    }
    minimal = real_tokens(simulator, 1)
    del minimal["open_id"]  # completed by one refresh at import
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump([full, {"name": "imported-2", **minimal}]))
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported connection imported-1" in result.stderr
    assert harness.store.get("imported-2").open_id == simulator.accounts[1].open_id
    run = harness.sync("imported-1")
    assert run.success
    assert harness.warehouse.count("tiktok_videos", connection_name="imported-1") == 45
    # Three days left on the refresh token: `list` warns, ahead of the 14-day threshold.
    table = cli("list")
    assert "the refresh token of imported-1 expires in 3 days" in table.stderr
    assert listed()["imported-1"]["refresh_token_days_left"] == pytest.approx(3, abs=0.1)
    assert listed()["imported-1"]["last_synced_at"] is not None


TOKENS1 = "access_token: act.TOPSECRET!1, refresh_token: rft.TOPSECRET!1"
TOKENS2 = "access_token: act.TOPSECRET!2, refresh_token: rft.TOPSECRET!2"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("name: x", "must be a YAML list"),
        (
            "- name: creator-1\n  access_token: act.TOPSECRET!1",
            "entry 1 (creator-1): field `refresh_token`: required",
        ),
        (
            f"- {{name: Bad Name, {TOKENS1}}}",
            "entry 1 (Bad Name): field `name`",
        ),
        (
            f"- {{name: c1, {TOKENS1}, expires_in: -5}}",
            "entry 1 (c1): field `expires_in`: must be a whole number",
        ),
        (
            f"- {{name: c1, {TOKENS1}, scope: x}}",
            "entry 1 (c1): field `scope`: unknown field",
        ),
        (
            f"- {{name: c1, {TOKENS1}, scopes: [vid]}}",
            "entry 1 (c1): field `scopes`",
        ),
        (
            f"- {{name: c1, {TOKENS1}, app: nope}}",
            "entry 1 (c1): field `app`: TikTok app 'nope' needs TIKTOK_NOPE_CLIENT_KEY",
        ),
        (
            "- {name: c1, " + TOKENS1 + f", open_id: o}}\n- {{name: c1, {TOKENS2}, open_id: p}}",
            "entry 2 (c1): field `name`: 'c1' appears more than once",
        ),
        ("- name: c1\n  access_token: act.TOPSECRET!1: oops\n", "not valid YAML at line 2"),
    ],
)
def test_bad_import_files_name_entry_and_field_and_store_nothing(
    harness, tmp_path, document, expected
):
    path = tmp_path / "bad.yaml"
    path.write_text(document)
    result = cli("import", str(path))
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "TOPSECRET" not in result.output
    assert harness.store.names(status=None) == []


def test_deauthorize_webhook_disconnects_once_and_rejects_a_bad_signature(
    harness, simulator, tmp_path
):
    connect(simulator, harness.store, "creator-1", account=0)
    body = json.dumps(
        {
            "client_key": load_app("default").client_key,
            "event": "authorization.removed",
            "create_time": 1,
            "user_openid": simulator.accounts[0].open_id,
            "content": '{"reason": 1 }',
        }
    ).encode()
    path = tmp_path / "event.json"
    path.write_bytes(body)
    forged = cli(
        "deauthorize",
        "--payload",
        str(path),
        "--signature",
        sign(body, "not-the-secret", int(time.time())),
    )
    assert forged.exit_code == 1 and "does not match" in forged.stderr
    assert harness.store.get("creator-1").status == "active"
    header = sign(body, TEST_CLIENT_SECRET, int(time.time()))
    first = cli("deauthorize", "--signature", header, input=body.decode())  # body on stdin
    assert first.exit_code == 0, first.output
    assert "disconnected: creator-1" in first.stderr
    second = cli("deauthorize", "--payload", str(path), "--signature", header)
    assert "already_disconnected" in second.stderr
    assert harness.store.get("creator-1").status == "disconnected"


def test_rotate_key_then_the_old_key_can_be_dropped(harness, simulator):
    connect(simulator, harness.store, "creator-1", account=0)
    token = harness.store.get("creator-1").access_token
    new = Fernet.generate_key().decode()
    os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"] = f"{new},{os.environ['TIKTOK_CRM_SYNC_TOKEN_KEYS']}"
    result = cli("rotate-key")
    assert result.exit_code == 0 and "re-encrypted the tokens of 1 connections" in result.stderr
    os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"] = new  # the old key is gone
    assert ConnectionStore(harness.store.engine).get("creator-1").access_token == token
    assert harness.store.get("creator-1").token_version == 1  # the grant itself is untouched


def test_a_missing_key_is_a_clear_error(harness, tmp_path):
    del os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"]
    path = tmp_path / "tokens.yaml"
    path.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "c1",
                    "access_token": "act.TOPSECRET!1",
                    "refresh_token": "rft.TOPSECRET!1",
                    "open_id": "o",
                    "scopes": "user.info.basic",
                }
            ]
        )
    )
    result = cli("import", str(path))
    assert result.exit_code == 1
    assert "TIKTOK_CRM_SYNC_TOKEN_KEYS is not set" in result.stderr
    assert "TOPSECRET" not in result.output


# The name the issue saw cut to `big_cr…` by a table at 80 columns.
LONG_NAME = "big_creator_studio_eu"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def listed_text(harness, simulator) -> tuple[str, dict[str, Connection]]:
    """`connections list` of two connections, one needing reconnection; its stdout."""
    connect(simulator, harness.store, LONG_NAME, account=0)
    connect(simulator, harness.store, "creator-2", account=1, scopes=ALL_SCOPES[:2])
    harness.store.set_status("creator-2", "needs_reconnect", "the user revoked access")
    result = cli("list")
    assert result.exit_code == 0, result.output
    return result.stdout, {name: harness.store.get(name) for name in (LONG_NAME, "creator-2")}


def assert_whole_values_and_reconnect_command(text: str, stored: dict[str, Connection]) -> None:
    assert "…" not in text
    lines = text.splitlines()
    words = [line.split() for line in lines]
    for name, connection in stored.items():
        assert ["open_id", connection.open_id] in words
        assert ["scopes", ",".join(sorted(connection.scopes))] in words
        status_line = next(line for line in lines if line.startswith(f"{name}  "))
        beside = lines[lines.index(status_line) + 1].split()
        needs_reconnect = name == "creator-2"
        assert ("needs_reconnect" in status_line) is needs_reconnect
        command = ["reconnect", "tiktok-crm-sync", "connections", "reconnect", name]
        assert (beside == command) is needs_reconnect


def test_list_piped_prints_every_value_whole_and_the_reconnect_command(harness, simulator):
    text, stored = listed_text(harness, simulator)
    assert not ANSI.search(text)  # plain text: what a pipe or a file gets
    assert_whole_values_and_reconnect_command(text, stored)


def test_list_on_an_80_column_terminal_fits_and_cuts_nothing(harness, simulator, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: write for a terminal, though captured
    monkeypatch.setenv("COLUMNS", "80")
    text, stored = listed_text(harness, simulator)
    assert ANSI.search(text)  # it did take the terminal's path (colours)
    plain = ANSI.sub("", text)
    assert max(cell_len(line) for line in plain.splitlines()) <= 80
    assert_whole_values_and_reconnect_command(plain, stored)


@pytest.mark.parametrize("command", ["connect", "reconnect"])
def test_headless_prints_the_authorization_url_whole_on_one_line(harness, simulator, command):
    connect(simulator, harness.store, "creator-1", account=0)
    name = "creator-1" if command == "reconnect" else "creator-2"
    # A pasted address from another authorization: refused, after the URL was printed.
    pasted = f"{REDIRECT_URI}?code=abc&state=not-this-one\n"
    result = cli(command, name, "--headless", "--redirect-uri", REDIRECT_URI, input=pasted)
    assert result.exit_code == 1
    [url] = [line for line in result.stderr.splitlines() if "/v2/auth/authorize/" in line]
    assert url.startswith(simulator.base_url) and len(url) > 80  # rich would have wrapped it
    query = parse_qs(urlsplit(url).query)
    assert {"client_key", "scope", "redirect_uri", "state", "response_type"} <= set(query)
    assert query["redirect_uri"] == [REDIRECT_URI] and query["code_challenge_method"] == ["S256"]


def test_connect_checks_every_prerequisite_before_sending_anyone_to_tiktok(harness, monkeypatch):
    """Issue 20: a missing token key, missing app credentials and a busy callback port are all
    reported before the browser opens, each with its fix; TikTok is never asked."""
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    del os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"]
    del os.environ["TIKTOK_CLIENT_SECRET"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("connect", "creator-1", "--port", str(port))
    assert result.exit_code == 1
    assert "not sent to TikTok yet" in result.stderr
    assert "TIKTOK_CRM_SYNC_TOKEN_KEYS is not set" in result.stderr
    assert "TIKTOK_CLIENT_SECRET" in result.stderr
    assert f"callback port {port} is in use" in result.stderr
    assert opened == []
    assert harness.store.names(status=None) == []


def test_a_read_only_state_database_is_found_before_tiktok(harness, monkeypatch, tmp_path):
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    assert cli("list").exit_code == 0  # creates the state database
    # Opened read-only (file modes do not stop root, who runs the CI container).
    os.environ["STATE_DATABASE_URL"] = f"sqlite:///file:{tmp_path / 'state.db'}?mode=ro&uri=true"
    result = cli("connect", "creator-1", "--port", "0")
    assert result.exit_code == 1
    assert "state database cannot be opened for writing" in result.stderr
    assert opened == []

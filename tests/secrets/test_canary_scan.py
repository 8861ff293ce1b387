"""Canary secrets through the demo and a failing live sync, then a scan for every one of them.

Every secret gets a unique canary value: the TikTok client secret, the Fernet token keys (a new and
an old one), the access and refresh tokens and authorization codes the simulator issues (recorded
as it issues them), the HubSpot and Salesforce tokens (checked by the fakes), the generic CRM's
auth header and the key in its URL, and the alert webhook URL. The runs are real Dagster runs in a
persistent instance; failures are forced (a revoked grant, a CRM that answers 401 and echoes the
credentials it got, an unreachable webhook, OAuth and Display API errors that echo secrets).

Then the Dagster instance (run storage, event logs, compute logs), the state and warehouse
databases (every table, every column), stdout/stderr, log records and the text of every exception
(with its chained causes) are scanned for each canary, raw and encoded: zero hits. Positive
controls show each canary was really in use.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sqlite3
import threading
import traceback
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from pipelines.cli import main
from resources import settings
from resources.alerts import AlertError, post_alert
from resources.connections.store import ConnectionStore
from resources.crm.config import GenericSettings
from resources.crm.errors import CrmError
from resources.crm.generic import GenericClient
from resources.crm.http import CrmHttp
from resources.database import make_engine
from resources.redaction import redact_secrets
from resources.tiktok.apps import load_app
from resources.tiktok.client import TikTokClient
from resources.tiktok.errors import TikTokError
from resources.tiktok.oauth import OAuthClient
from simulators.crm_fakes import FakeHubSpot, FakeSalesforce
from simulators.tiktok import SimulatorConfig, TikTokSimulator
from simulators.tiktok.auth import AuthState
from tests.pipelines.helpers import REDIRECT_URI, connect
from tests.secrets.scan import Canary, Hit, Scanner, encodings
from tests.secrets.scan import main as scan_main

CRM_PREFIXES = ("HUBSPOT_", "SALESFORCE_", "GENERIC_CRM_", "CRM_", "ALERT_", "DAGSTER_UI_URL")


def _canary(kind: str) -> str:
    return f"canary-{kind}-{secrets.token_hex(12)}"


def _fernet_canary() -> str:
    # A valid Fernet key whose text is unique to this test run.
    return base64.urlsafe_b64encode(b"canary-fernet-" + secrets.token_bytes(18)).decode()


@dataclass
class Canaries:
    """Label -> value of every secret of one scenario, plus the tokens the simulator issues."""

    values: dict[str, str] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)

    def all(self) -> list[Canary]:
        issued = [Canary(f"simulator-issued #{n}", value) for n, value in enumerate(self.issued)]
        return [Canary(label, value) for label, value in self.values.items()] + issued


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> Canaries:
    """Fresh canaries; the simulator's tokens and codes are recorded as it issues them."""
    found = Canaries(
        {
            "TIKTOK_CLIENT_SECRET": _canary("client-secret"),
            "token key (new)": _fernet_canary(),
            "token key (old)": _fernet_canary(),
            "HUBSPOT_ACCESS_TOKEN": _canary("hubspot"),
            "SALESFORCE_ACCESS_TOKEN": _canary("salesforce"),
            "GENERIC_CRM_AUTH_HEADER value": _canary("generic-header"),
            "GENERIC_CRM_URL key": _canary("generic-urlkey"),
            "ALERT_WEBHOOK_URL path": _canary("webhook"),
        }
    )
    token, code = AuthState._token, AuthState.issue_code

    def recording_token(self: AuthState, prefix: str) -> str:
        value = token(self, prefix)
        found.issued.append(value)
        return value

    def recording_code(self: AuthState, *args: Any) -> str:
        value = code(self, *args)
        found.issued.append(value)
        return value

    monkeypatch.setattr(AuthState, "_token", recording_token)
    monkeypatch.setattr(AuthState, "issue_code", recording_code)
    for name in list(os.environ):
        if name.startswith(CRM_PREFIXES):
            monkeypatch.delenv(name)
    return found


class Endpoint:
    """A local HTTP endpoint (generic CRM or alert webhook) that records what it received.

    mode "accept": 200; "echo": 401 whose body repeats the credentials and the URL it got, as
    a careless or hostile server would; "fail": 500.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                endpoint.received.append((self.path, headers, body))
                status, payload = 200, {"results": []}
                if endpoint.mode == "echo":
                    status = 401
                    payload = {"message": f"bad credentials {headers} for {self.path}"}
                elif endpoint.mode == "fail":
                    status, payload = 500, {"error": f"cannot post to {self.path}"}
                content = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_POST = do_PUT = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    @contextmanager
    def running(self) -> Iterator[Endpoint]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def crm_targets(canaries: Canaries, generic_mode: str) -> Iterator[dict[str, Any]]:
    """The CRM fakes and endpoints on 127.0.0.1, configured through the environment."""
    values = canaries.values
    hubspot = FakeHubSpot(token=values["HUBSPOT_ACCESS_TOKEN"])
    salesforce = FakeSalesforce(token=values["SALESFORCE_ACCESS_TOKEN"])
    generic, webhook = Endpoint(generic_mode), Endpoint("fail")
    with hubspot.running(), salesforce.running(), generic.running(), webhook.running():
        os.environ |= {
            "HUBSPOT_ACCESS_TOKEN": values["HUBSPOT_ACCESS_TOKEN"],
            "HUBSPOT_BASE_URL": hubspot.base_url,
            "SALESFORCE_INSTANCE_URL": salesforce.base_url,
            "SALESFORCE_ACCESS_TOKEN": values["SALESFORCE_ACCESS_TOKEN"],
            "GENERIC_CRM_URL": f"{generic.url}/{{object}}?api_key={values['GENERIC_CRM_URL key']}",
            "GENERIC_CRM_AUTH_HEADER": f"X-Api-Key: {values['GENERIC_CRM_AUTH_HEADER value']}",
            "ALERT_WEBHOOK_URL": f"{webhook.url}/hooks/{values['ALERT_WEBHOOK_URL path']}",
            # Rotation in progress: the new key encrypts, both decrypt.
            "TIKTOK_CRM_SYNC_TOKEN_KEYS": ",".join(
                (values["token key (new)"], values["token key (old)"])
            ),
        }
        yield {"hubspot": hubspot, "salesforce": salesforce, "generic": generic, "webhook": webhook}


# httpx logs each request URL at INFO (its URLs are redacted by resources.redaction, tested
# below) and httpcore each response header at DEBUG: both are off by default.
WIRE_LOGGERS = ("httpx", "httpcore")


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of every other logger, down to DEBUG, as formatted text."""
    return "\n".join(
        f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith(WIRE_LOGGERS)
    )


def _exception_text(err: BaseException) -> str:
    """What a traceback shows: the message of the error and of every chained cause."""
    return "".join(traceback.format_exception(err))


def _scan_everything(scanner: Scanner, texts: dict[str, str]) -> list[Hit]:
    """The Dagster instance, both data folders, and every captured text."""
    folders = [Path(os.environ["DAGSTER_HOME"]), settings.data_dir()]
    assert any(Path(os.environ["DAGSTER_HOME"]).rglob("*.db"))
    hits = scanner.scan_paths(folders)
    for label, text in texts.items():
        hits += scanner.scan_text(text, label)
    return hits


def _assert_tokens_sealed(canaries: Canaries, names: list[str]) -> None:
    """Positive control: the state database holds the tokens, encrypted with the canary key."""
    store = ConnectionStore(make_engine(settings.state_database_url()))
    for name in names:
        connection = store.get(name)
        if connection.has_tokens:
            assert connection.access_token in canaries.issued
    with sqlite3.connect(settings.data_dir() / "state.db") as db:
        cells = [
            str(cell) for row in db.execute("SELECT * FROM tiktok_connections") for cell in row
        ]
    sealed = [cell for cell in cells if cell.startswith("gAAAAA")]  # Fernet tokens
    assert sealed
    fernet = Fernet(canaries.values["token key (new)"].encode())
    assert any(fernet.decrypt(cell.encode()).decode() in canaries.issued for cell in sealed)


def test_demo_with_canary_secrets_leaks_none(
    canaries: Canaries, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Every log record, down to DEBUG (httpx logs each request URL at INFO).
    caplog.set_level(logging.DEBUG)
    with crm_targets(canaries, generic_mode="accept") as targets:
        result = CliRunner().invoke(main, ["demo", "--connections", "2", "--videos", "4"])
    assert result.exit_code == 0, result.output

    # Positive controls: each canary was really used.
    assert targets["hubspot"].records() and targets["salesforce"].records()
    path, headers, _body = targets["generic"].received[0]
    assert canaries.values["GENERIC_CRM_URL key"] in path
    assert headers["X-Api-Key"] == canaries.values["GENERIC_CRM_AUTH_HEADER value"]
    assert len(canaries.issued) >= 6  # codes, access and refresh tokens of two connections
    _assert_tokens_sealed(canaries, ["demo-01", "demo-02"])

    captured = capfd.readouterr()
    texts = {
        "cli output": result.output,
        "stdout": captured.out,
        "stderr": captured.err,
        "log records": _log_text(caplog),
    }
    hits = _scan_everything(Scanner(canaries.all()), texts)
    assert hits == [], "\n".join(map(str, hits))


def _run_failure_alerts(instance: dg.DagsterInstance, run_ids: list[str]) -> None:
    """The run-failure sensor on each failed run (its webhook answers 500)."""
    from pipelines.defs.alerts.sensors import tiktok_run_failure_alert

    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        entries = [
            record.event_log_entry for record in instance.get_records_for_run(run_id).records
        ]
        [failure] = [
            entry.dagster_event
            for entry in entries
            if entry.dagster_event and entry.dagster_event.event_type_value == "PIPELINE_FAILURE"
        ]
        context = dg.build_run_status_sensor_context(
            sensor_name="tiktok_run_failure_alert",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure,
        ).for_run_failure()
        tiktok_run_failure_alert(context)


def _forced_errors(canaries: Canaries, simulator: TikTokSimulator) -> dict[str, str]:
    """Failures whose error path formats request details; each one's full traceback text."""
    texts: dict[str, str] = {}

    def record(label: str, action: Callable[[], object], *kinds: type[BaseException]) -> None:
        with pytest.raises(kinds) as caught:
            action()
        # The failure's Dagster metadata too (error code, log id), where the error has it.
        metadata = getattr(caught.value, "metadata", dict)()
        texts[label] = f"{_exception_text(caught.value)}\n{metadata}"

    oauth = OAuthClient(load_app("default"), api_base_url=simulator.base_url)
    stale_refresh = next(v for v in canaries.issued if v.startswith("rft."))
    record("refresh with a rotated-away token", lambda: oauth.refresh(stale_refresh), TikTokError)
    used_code = next(v for v in canaries.issued if not v.startswith(("act.", "rft.", "clt.")))
    record(
        "code exchange replayed",
        lambda: oauth.exchange_code(used_code, redirect_uri=REDIRECT_URI),
        TikTokError,
    )

    def echo_oauth(request: httpx.Request) -> httpx.Response:
        # An OAuth server that repeats the whole form it got (client secret, refresh token),
        # in its description, its error code and its log id.
        form = request.content.decode()
        echoed = {"error": form, "error_description": form, "log_id": form}
        return httpx.Response(400, json=echoed)

    echoing = OAuthClient(
        load_app("default"),
        api_base_url="https://open.tiktokapis.test",
        http=httpx.Client(transport=httpx.MockTransport(echo_oauth)),
    )
    record("oauth error echoing the form", lambda: echoing.refresh(stale_refresh), TikTokError)

    def echo_cut(request: httpx.Request) -> httpx.Response:
        # The description is cut to 200 characters in the message: here, inside the secret.
        description = "x" * 180 + load_app("default").client_secret
        return httpx.Response(
            400, json={"error": "invalid_client", "error_description": description}
        )

    cutting = OAuthClient(
        load_app("default"),
        api_base_url="https://open.tiktokapis.test",
        http=httpx.Client(transport=httpx.MockTransport(echo_cut)),
    )
    record("oauth error echo cut inside the secret", lambda: cutting.refresh("rft.x"), TikTokError)

    access = next(v for v in canaries.issued if v.startswith("act."))

    def echo_display(request: httpx.Request) -> httpx.Response:
        message = f"token {request.headers['Authorization']} rejected for {request.url}"
        return httpx.Response(400, json={"error": {"code": "invalid_params", "message": message}})

    class Tokens:
        refresh_calls = 0

        def access_token(self) -> str:
            return access

        def refresh(self, rejected_token: str) -> str:
            return access

    display = TikTokClient(
        Tokens(),
        base_url="https://open.tiktokapis.test",
        http=httpx.Client(transport=httpx.MockTransport(echo_display)),
        sleep=lambda _s: None,
    )
    record(
        "display api error echoing the token", lambda: display.get_user(["open_id"]), TikTokError
    )

    closed = GenericSettings(
        url=f"http://127.0.0.1:9/{{object}}?api_key={canaries.values['GENERIC_CRM_URL key']}",
        auth_header=("X-Api-Key", canaries.values["GENERIC_CRM_AUTH_HEADER value"]),
    )
    generic = GenericClient(
        closed, "videos", http=CrmHttp("generic", max_attempts=1, sleep=lambda _s: None)
    )
    record(
        "generic crm unreachable",
        lambda: list(generic.push_batches([{"video_id": "1"}], "video_id")),
        CrmError,
    )
    webhook = os.environ["ALERT_WEBHOOK_URL"]
    unreachable = f"http://127.0.0.1:9/hooks/{canaries.values['ALERT_WEBHOOK_URL path']}"
    record("alert webhook answering 500", lambda: post_alert(webhook, {"text": "x"}), AlertError)
    record("alert webhook unreachable", lambda: post_alert(unreachable, {"text": "x"}), AlertError)

    keys = os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"]
    os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"] = Fernet.generate_key().decode()
    try:
        store = ConnectionStore(make_engine(settings.state_database_url()))
        record(
            "tokens read with a wrong key", lambda: store.get("canary-ok").access_token, Exception
        )
    finally:
        os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"] = keys
    return texts


def test_failing_live_sync_with_canary_secrets_leaks_none(
    canaries: Canaries, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_key = f"awcanary{secrets.token_hex(6)}"
    secret = canaries.values["TIKTOK_CLIENT_SECRET"]
    config = SimulatorConfig(seed=11, accounts=2, videos_per_account=3, apps={client_key: secret})
    simulator = TikTokSimulator(config)
    base_url = simulator.start()
    texts: dict[str, str] = {}
    try:
        os.environ |= {
            "TIKTOK_CLIENT_KEY": client_key,
            "TIKTOK_CLIENT_SECRET": secret,
            "TIKTOK_API_BASE_URL": base_url,
            "TIKTOK_AUTH_BASE_URL": base_url,
        }
        with crm_targets(canaries, generic_mode="echo") as targets:
            store = ConnectionStore(make_engine(settings.state_database_url()))
            connect(simulator, store, "canary-ok", account=0)
            connect(simulator, store, "canary-revoked", account=1)
            # canary-ok refreshes (client secret, rotating refresh token), then its pushes meet
            # a HubSpot that answers 401 and a generic CRM that echoes the credentials.
            simulator.expire_access_tokens(0)
            targets["hubspot"].inject("unauthorized", count=10)
            # canary-revoked: the user removed the app; the refresh is refused (invalid_grant).
            simulator.revoke_account(1)
            from pipelines.runner import run_daily_sync

            with dg.DagsterInstance.get() as instance:
                outcome = run_daily_sync(instance, ["canary-ok", "canary-revoked"])
                assert set(outcome.failed) == {"canary-ok", "canary-revoked"}, outcome
                _run_failure_alerts(instance, outcome.run_ids)
            # Positive controls: the canaries reached the servers that check them.
            assert targets["generic"].received and targets["webhook"].received
            assert targets["hubspot"].request_count >= 1
            path, headers, _body = targets["generic"].received[0]
            assert canaries.values["GENERIC_CRM_URL key"] in path
            assert headers["X-Api-Key"] == canaries.values["GENERIC_CRM_AUTH_HEADER value"]
            _assert_tokens_sealed(canaries, ["canary-ok", "canary-revoked"])
            # canary-ok's refresh rotated its refresh token (two grants, then one refresh).
            assert sum(value.startswith("rft.") for value in canaries.issued) >= 3
            texts |= _forced_errors(canaries, simulator)
            # The echoing servers did repeat the secrets: the messages show them redacted.
            for label in (
                "oauth error echoing the form",
                "oauth error echo cut inside the secret",
                "display api error echoing the token",
            ):
                assert "[redacted]" in texts[label], texts[label]
            assert "reconnect canary-revoked" in outcome.failed["canary-revoked"]
            with sqlite3.connect(settings.data_dir() / "state.db") as db:
                reasons = [row[0] for row in db.execute("SELECT reason FROM crm_rejections")]
            assert any("[redacted]" in reason for reason in reasons), reasons
            for args in (["connections", "list"], ["connections", "list", "--json"]):
                listing = CliRunner().invoke(main, args)
                texts[" ".join(args)] = listing.output + str(listing.exception or "")
    finally:
        simulator.stop()
    captured = capfd.readouterr()
    texts |= {"stdout": captured.out, "stderr": captured.err, "log records": _log_text(caplog)}
    hits = _scan_everything(Scanner(canaries.all()), texts)
    assert hits == [], "\n".join(map(str, hits))


def test_request_urls_that_httpx_logs_carry_no_secret(
    canaries: Canaries, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    values = canaries.values
    with Endpoint("accept").running() as endpoint:
        post_alert(f"{endpoint.url}/hooks/{values['ALERT_WEBHOOK_URL path']}", {"text": "x"})
        url = f"{endpoint.url}/{{object}}?api_key={values['GENERIC_CRM_URL key']}"
        client = GenericClient(GenericSettings(url=url), "videos")
        list(client.push_batches([{"video_id": "1"}], "video_id"))
    assert len(endpoint.received) == 2
    hits = Scanner(canaries.all()).scan_text(caplog.text, "httpx log records")
    assert hits == [], "\n".join(map(str, hits))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # raw, URL-encoded and form-encoded
        ("got token act.abc!123456 for you", "got token [redacted] for you"),
        ("form: refresh_token=act.abc%21123456&x=1", "form: refresh_token=[redacted]&x=1"),
        # cut short by a message limit, then followed by more text
        ("...refused act.abc!12 (check the secret)", "...refused [redacted] (check the secret)"),
        # values too short to be a secret are left alone
        ("act.abc is not", "act.abc is not"),
    ],
)
def test_redact_secrets(text: str, expected: str) -> None:
    assert redact_secrets(text, ["act.abc!123456", "short", ""]) == expected


# The scanner itself: it must find what it is meant to find, or zero hits prove nothing.

CANARY = "canary-scanner-self-test-0123456789"


@pytest.mark.parametrize(
    ("label", "encode"),
    [
        ("raw", lambda v: v.encode()),
        ("url-encoded", lambda v: quote(v, safe="").encode()),
        ("json-escaped", lambda v: json.dumps(v).encode()),
        ("hex", lambda v: v.encode().hex().encode()),
        # inside longer base64 blobs, at each alignment
        ("base64@0", lambda v: base64.b64encode(v.encode() + b"tail")),
        ("base64@1", lambda v: base64.b64encode(b"x" + v.encode())),
        ("base64@2", lambda v: base64.b64encode(b"xy" + v.encode() + b"z")),
        ("urlsafe-base64@1", lambda v: base64.urlsafe_b64encode(b"\xff" + v.encode())),
    ],
)
def test_the_scanner_finds_every_encoding_in_files(
    tmp_path: Path, label: str, encode: Callable[[str], bytes]
) -> None:
    # Characters that each encoding changes, so that only the encoded form can match.
    canary = CANARY + '/+?&="'
    encoded = encode(canary)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "log.bin").write_bytes(b"prefix " + encoded + b" suffix")
    hits = Scanner([Canary("X", canary)]).scan_path(tmp_path)
    [hit] = [hit for hit in hits if hit.encoding == label]
    assert hit.where.endswith("log.bin") and 7 <= hit.offset < 7 + len(encoded)


def test_the_scanner_reads_sqlite_cells_and_compressed_blobs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE snapshots (id INTEGER, body BLOB, note TEXT)")
        db.execute(
            "INSERT INTO snapshots VALUES (1, ?, 'clean'), (2, NULL, ?)",
            (zlib.compress(f"config: {CANARY}".encode()), f"token={CANARY}"),
        )
    hits = Scanner([Canary("TOKEN", CANARY)]).scan_path(path)
    where = {(hit.where.split("#")[-1], hit.offset) for hit in hits if "#" in hit.where}
    assert where == {("snapshots.body", 1), ("snapshots.note", 2)}


def test_the_scanner_cli_exits_1_and_never_prints_a_canary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "leak.txt").write_text(f"Authorization: Bearer {CANARY}\n")
    (tmp_path / "clean.txt").write_text("nothing here\n")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", CANARY)
    monkeypatch.setenv("TIKTOK_CRM_SYNC_CANARIES", "another-canary-value-xyz,  ")
    assert scan_main([str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'leak.txt'}:22: HUBSPOT_ACCESS_TOKEN (raw)" in out
    assert CANARY not in out + err and "another-canary" not in out + err
    assert scan_main([str(tmp_path / "clean.txt")]) == 0
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    monkeypatch.delenv("TIKTOK_CRM_SYNC_CANARIES")
    monkeypatch.delenv("TIKTOK_CRM_SYNC_TOKEN_KEYS")
    assert scan_main([str(tmp_path)]) == 2


def test_short_canaries_and_encodings_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        Scanner([Canary("X", "short")])
    # Encoded fragments too short to be meaningful are dropped, the rest deduplicated.
    assert all(len(pattern) >= 10 for pattern in encodings("abcdefghijkl").values())

"""Run-failure alerts: a revoked connection's failed run is posted to a local webhook receiver."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from pipelines.defs.alerts.sensors import tiktok_run_failure_alert
from pipelines.defs.tiktok.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    CONNECTION_PARTITIONS_NAME,
)
from resources.alerts import RunFailure, alert_payload
from tests.pipelines.helpers import Harness, connect, use_live_app


@pytest.fixture
def receiver():
    """A Slack-like incoming webhook on 127.0.0.1 that records what it was sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/secret", received
    server.shutdown()


def test_payload_names_the_connection_and_the_fix():
    payload = alert_payload(
        RunFailure(
            job="tiktok_daily_sync",
            run_id="r1",
            connection="creator-a",
            reasons=("run `tiktok-crm-sync connections reconnect creator-a`",),
            ui_url="http://127.0.0.1:3000/",
        )
    )
    assert "connection `creator-a` failed" in payload["text"]
    assert "connections reconnect creator-a" in payload["text"]
    assert "http://127.0.0.1:3000/runs/r1" in payload["text"]


def evaluate_alert_sensor(harness: Harness, result: dg.ExecuteInProcessResult) -> None:
    """Run the alert sensor on a failed run, as the daemon does after the run fails."""
    run = harness.instance.get_run_by_id(result.run_id)
    failure_event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="tiktok_run_failure_alert",
        dagster_instance=harness.instance,
        dagster_run=run,
        dagster_event=failure_event,
    ).for_run_failure()
    tiktok_run_failure_alert(context)


def test_failed_run_of_a_revoked_connection_is_posted(simulator, tmp_path, receiver):
    url, received = receiver
    os.environ["ALERT_WEBHOOK_URL"] = url
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    connect(simulator, harness.store, "revoked", account=0)
    simulator.revoke_account(0)
    result = harness.sync("revoked")
    assert not result.success
    evaluate_alert_sensor(harness, result)
    assert len(received) == 1
    text = received[0]["text"]
    assert "connection `revoked` failed" in text
    assert "tiktok-crm-sync connections reconnect revoked" in text
    assert received[0]["run_id"] == result.run_id


def test_a_batched_backfill_run_names_every_failed_connection(simulator, tmp_path, receiver):
    url, received = receiver
    os.environ["ALERT_WEBHOOK_URL"] = url
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    names = ["ok-a", "revoked-b", "revoked-c"]
    for account, name in enumerate(names):
        connect(simulator, harness.store, name, account=account)
    simulator.revoke_account(1)
    simulator.revoke_account(2)
    harness.instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, names)
    result = dg.materialize(
        harness.assets,
        resources=harness.resources,
        instance=harness.instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: "ok-a", ASSET_PARTITION_RANGE_END_TAG: "revoked-c"},
        raise_on_error=False,
    )
    assert not result.success
    evaluate_alert_sensor(harness, result)
    [payload] = received
    assert payload["connection"] == "revoked-b, revoked-c"
    assert "connections `revoked-b`, `revoked-c` failed" in payload["text"]
    assert "tiktok-crm-sync connections reconnect revoked-c" in payload["text"]

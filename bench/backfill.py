"""Backfill of many connections from the Dagster UI's API: how many runs, how long.

`python -m bench.backfill [--connections 200] [--videos 60] [--batch-size N]`

Starts the TikTok simulator (600 requests/minute per endpoint, TikTok's own limit, 50-150 ms
latency from the launch on, as bench.clock), registers the connections through the real OAuth
flow, starts `dagster dev` on a fresh instance with the project's dagster.yaml (queued runs, at
most 4 at once), and launches one backfill of every asset of the daily sync (the six tables; no
CRM push is configured) over all connection partitions through the webserver's GraphQL API, as
the UI's "Materialize all" does. It waits for the backfill to finish and reports:

- runs: runs the backfill launched (SYNC_BATCH_SIZE connections per run, default 500);
- wall_s: from launch to the backfill's end;
- lower_bound_s: the time TikTok's limits allow for the requests made, at a steady rate
  (max over endpoints of requests / (limit / 60)); vs_lower_bound = wall_s / lower_bound_s;
  burst_bound_s: the least a sliding minute allows (bench.clock's burst_bound_s);
- failed_partitions and the warehouse's row counts, to show nothing was lost.

The final line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.clock import burst_bound_s
from bench.daily import fresh_home, stop_group

REPO = Path(__file__).resolve().parents[1]
LIMIT_PER_MINUTE = 600
DISPLAY_ENDPOINTS = ("user_info", "video_list", "video_query")
LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 100000) { runId status } }
  }
}"""


def graphql(base_url: str, query: str, variables: dict) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", body, {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL error: {answer['errors']}")
    return answer["data"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_webserver(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"{base_url}/server_info", timeout=2)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"dagster dev did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(1)


def wait_for_backfill(base_url: str, backfill_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        backfill = graphql(base_url, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        runs = backfill["runs"]
        done = all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs)
        if backfill["status"] != "REQUESTED" and done:
            return backfill
        time.sleep(2)
    raise SystemExit(f"the backfill did not finish within {timeout_s:.0f} s")


def sync_asset_keys() -> list:
    """Every asset of the daily sync, as the UI's "Materialize all" selects them (the code
    location's own list: with no CRM configured, the six tables)."""
    from pipelines.defs.sync.assets import sync_assets

    return [key for assets in sync_assets().assets for key in assets.keys]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=None, help="default: SYNC_BATCH_SIZE")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--latency-low", type=int, default=50)
    parser.add_argument("--latency-high", type=int, default=150)
    args = parser.parse_args(argv)

    folder = fresh_home("bench-backfill-")
    if args.batch_size:
        os.environ["SYNC_BATCH_SIZE"] = str(args.batch_size)

    import dagster as dg
    import sqlalchemy as sa

    from pipelines import demo
    from pipelines.runner import add_partitions
    from resources import settings

    demo.prepare_environment(REPO)
    started_setup = time.monotonic()
    with demo.running_simulator(seed=5, accounts=args.connections, videos=args.videos) as sim:
        names = demo.register_demo_connections(sim, args.connections)
        with dg.DagsterInstance.get() as instance:
            add_partitions(instance, names)
        print(f"setup: {len(names)} connections in {time.monotonic() - started_setup:.1f} s")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = folder / "dagster-dev.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_webserver(base_url, process, log)
            sim.reset_stats()
            sim.set(latency_ms=(args.latency_low, args.latency_high))
            params = {
                "partitionNames": names,
                "assetSelection": [{"path": key.path} for key in sync_asset_keys()],
                "fromFailure": False,
                "title": f"bench.backfill {len(names)} connections",
            }
            started = time.monotonic()
            launched = graphql(base_url, LAUNCH, {"params": params})["launchPartitionBackfill"]
            if launched["__typename"] != "LaunchBackfillSuccess":
                raise SystemExit(f"backfill not launched: {launched}")
            backfill = wait_for_backfill(base_url, launched["backfillId"], args.timeout)
            wall = time.monotonic() - started
            traffic = sim.stats()
        finally:
            stop_group(process, signal.SIGINT)

    requests = {e: traffic.get(e, {}).get("requests", 0) for e in DISPLAY_ENDPOINTS}
    rate_limited = sum(traffic.get(e, {}).get("rate_limited", 0) for e in DISPLAY_ENDPOINTS)
    lower_bound = max(count / (LIMIT_PER_MINUTE / 60) for count in requests.values())
    burst_bound = burst_bound_s(max(requests.values()), args.latency_high / 1000)
    runs = backfill["runs"]
    engine = sa.create_engine(settings.warehouse_url())
    with engine.connect() as db:
        counts = {
            table: db.execute(
                sa.text(f"SELECT COUNT(DISTINCT connection_name) FROM {table}")
            ).scalar()
            for table in ("tiktok_profiles", "tiktok_videos", "crm_contacts", "crm_videos")
        }
    failed_runs = sum(run["status"] != "SUCCESS" for run in runs)
    print(f"backfill status {backfill['status']}: {len(runs)} runs ({failed_runs} not successful)")
    print(f"wall {wall:.1f} s; requests {requests}; answered 429: {rate_limited}")
    print(
        f"lower bound at {LIMIT_PER_MINUTE}/min per endpoint: {lower_bound:.1f} s steady, "
        f"{burst_bound:.1f} s in a sliding minute"
    )
    print(f"connections with rows per table: {counts}")
    result = {
        "connections": len(names),
        "videos_per_connection": args.videos,
        "batch_size": args.batch_size or "default",
        "runs": len(runs),
        "failed_runs": failed_runs,
        "status": backfill["status"],
        "wall_s": round(wall, 1),
        "requests": requests,
        "rate_limited": rate_limited,
        "lower_bound_s": round(lower_bound, 1),
        "vs_lower_bound": round(wall / lower_bound, 3) if lower_bound else None,
        "burst_bound_s": round(burst_bound, 1),
        "connections_with_rows": counts,
    }
    print(json.dumps(result))
    shutil.rmtree(folder, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()

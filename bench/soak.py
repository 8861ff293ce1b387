"""Soak: the daily job over thousands of connections in batched runs, memory and time recorded.

`python -m bench.soak [--connections 5000] [--videos 6] [--batch-size 250] [--backend postgres]`

The parent process starts the TikTok simulator (no rate limit: this measures the pipeline, not
TikTok's budget, which `bench.extract` and `bench.backfill` cover), registers the connections
through the real OAuth code exchange and starts one child process. The child runs the daily
job's assets over the connections in batched runs (the ranges a backfill uses,
`SYNC_BATCH_SIZE` connections per run) in a persistent Dagster instance, and reports its
resident memory after every run and its peak. The parent then counts what reached the warehouse:
every connection's profile, every video, every CRM record, and no failed partition.

`--backend postgres` puts the warehouse and the state database on PostgreSQL
(TEST_POSTGRES_URL, default the local server), in a schema of their own dropped afterwards.
The final line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TABLES = ("tiktok_profiles", "tiktok_videos", "crm_contacts", "crm_videos")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(batch_size: int) -> None:
    """Run every batch in this process; print one JSON line of figures."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
    from pipelines.defs.tiktok.partitions import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )
    from pipelines.runner import QUIET_CONSOLE, add_partitions
    from resources.connections.store import ConnectionStore
    from resources.database import make_engine
    from resources.settings import state_database_url

    names = sorted(ConnectionStore(make_engine(state_database_url())).names())
    job = defs().resolve_job_def(DAILY_SYNC_JOB)
    samples, failed_runs = [], 0
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        add_partitions(instance, names)
        for first in range(0, len(names), batch_size):
            batch = names[first : first + batch_size]
            result = job.execute_in_process(
                instance=instance,
                run_config=QUIET_CONSOLE,
                raise_on_error=False,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: batch[0],
                    ASSET_PARTITION_RANGE_END_TAG: batch[-1],
                },
            )
            failed_runs += not result.success
            samples.append(round(rss_mb(), 1))
            print(
                f"  run {len(samples)}: {len(batch)} connections, "
                f"{'ok' if result.success else 'FAILED'}, rss {samples[-1]} MB, "
                f"{time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"wall_s": time.monotonic() - started, "runs": len(samples)}
    print(json.dumps(figures | {"failed_runs": failed_runs, "rss_mb": samples, "peak_mb": peak}))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.batch_size)
        return {}

    import sqlalchemy as sa

    from bench.extract_setup import connect_all, start_simulator
    from simulators.tiktok.config import MAX_ACCOUNTS

    folder = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    (folder / "dagster_home").mkdir()
    demo_home = folder / "demo"  # where demo mode keeps its databases (resources.settings)
    demo_home.mkdir()
    env = {
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "TIKTOK_CRM_SYNC_HOME": str(folder),
        "TIKTOK_CRM_SYNC_MODE": "demo",
        "TIKTOK_RATE_LIMITS": "user_info=10000000,video_list=10000000,video_query=10000000",
    }
    admin, schema = None, None
    if args.backend == "postgres":
        admin = sa.create_engine(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES))
        schema = f"soak_{uuid.uuid4().hex[:10]}"
        with admin.begin() as db:
            db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = admin.url.render_as_string(hide_password=False)
        # Demo mode reads only the demo's own URLs (resources.settings).
        env["DEMO_WAREHOUSE_URL"] = env["DEMO_STATE_DATABASE_URL"] = (
            f"{url}?options=-csearch_path%3D{schema}"
        )
    for name in ("WAREHOUSE_URL", "STATE_DATABASE_URL", "TIKTOK_CLIENT_KEY"):
        os.environ.pop(name, None)
    os.environ.update(env)

    # The simulator holds at most MAX_ACCOUNTS accounts; beyond that, accounts are connected
    # again under other connection names (each its own grant, tokens and rows).
    accounts = min(args.connections, MAX_ACCOUNTS)
    simulator = start_simulator(accounts, args.videos, limit_per_minute=None)
    try:
        os.environ["TIKTOK_API_BASE_URL"] = os.environ["TIKTOK_AUTH_BASE_URL"] = simulator.base_url
        started = time.monotonic()
        connect_all(
            simulator, demo_home, args.connections, os.environ.get("DEMO_STATE_DATABASE_URL")
        )
        print(f"setup: {args.connections} connections in {time.monotonic() - started:.0f} s")
        command = [
            sys.executable,
            "-m",
            "bench.soak",
            "--child",
            "--batch-size",
            str(args.batch_size),
        ]
        done = subprocess.run(
            command, cwd=REPO, env=os.environ, stdout=subprocess.PIPE, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"the sync child failed with exit code {done.returncode}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        # TikTok tables are keyed by connection; CRM records by TikTok account (open_id) and
        # video id, so an account connected twice is one contact with one set of videos.
        expected = {
            "tiktok_profiles": args.connections,
            "tiktok_videos": args.connections * args.videos,
            "crm_contacts": accounts,
            "crm_videos": accounts * args.videos,
        }
        engine = sa.create_engine(
            os.environ.get("DEMO_WAREHOUSE_URL") or f"sqlite:///{demo_home / 'warehouse.db'}"
        )
        with engine.connect() as db:
            counts = {t: db.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}
        engine.dispose()
    finally:
        simulator.stop()
        if admin is not None:
            with admin.begin() as db:
                db.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)

    lost = {t: expected[t] - counts[t] for t in TABLES if counts[t] != expected[t]}
    rss = figures["rss_mb"]
    result = {
        "backend": args.backend,
        "connections": args.connections,
        "videos_per_connection": args.videos,
        "batch_size": args.batch_size,
        "runs": figures["runs"],
        "failed_runs": figures["failed_runs"],
        "wall_s": round(figures["wall_s"], 1),
        "connections_per_s": round(args.connections / figures["wall_s"], 2),
        "rss_first_run_mb": rss[0],
        "rss_last_run_mb": rss[-1],
        "peak_rss_mb": round(figures["peak_mb"], 1),
        "rows": counts,
        "lost": lost,
    }
    print(f"runs {result['runs']} ({result['failed_runs']} failed), wall {result['wall_s']} s")
    print(f"child RSS after each run (MB): {rss}")
    print(f"rows {counts}; expected {expected}; lost {lost or 'nothing'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

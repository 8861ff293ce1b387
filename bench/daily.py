"""The scheduled daily sync of a fleet, day 1 and day 2, against TikTok's rate limit.

`python -m bench.daily [--connections 1000] [--videos 40] [--cron-wait 70]`

Starts the TikTok simulator at TikTok's documented limit (600 requests per minute per endpoint,
shared by the app, 50-150 ms latency), registers the connections through the real OAuth flow,
and starts `dagster-daemon` on a fresh instance with the project's dagster.yaml (queued run
coordinator, default run launcher: a process per run). The daily schedule (SYNC_CRON every
minute here) launches the runs, as in production. Day 1 runs once the schedule has covered every
connection; then the simulator's day changes (creators post, edit captions, delete old videos,
metrics move) and day 2 runs the same way. The runs of day 1 are re-tagged as yesterday's, which
is what the passing of a real day does to the schedule's once-a-day rule.

Per day it reports runs, wall_s (first run started to last run ended; tick_to_end_s counts from
the first run's creation, so queueing and process launch too), lower_bound_s (max over
endpoints of requests / (limit / 60)), vs_lower_bound, rate_limited_share, failed_connections,
rows_correct (every connection's live videos, daily snapshots, deletions and CRM rows match the
simulator) and the peak RSS summed over the daemon and run processes. The final line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_PER_MINUTE = 600
DISPLAY_ENDPOINTS = ("user_info", "video_list", "video_query")
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in (
            Path(f"/proc/{current}/task").glob("*") if Path(f"/proc/{current}").exists() else []
        ):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def fresh_home(prefix: str, **environ: str) -> Path:
    """A new folder holding a Dagster instance with the project's dagster.yaml and the data home,
    made this process's environment (with `environ`); the live URLs and app are unset."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ |= {"DAGSTER_HOME": str(home), "TIKTOK_CRM_SYNC_HOME": str(folder / "data")}
    os.environ |= environ
    for name in ("WAREHOUSE_URL", "STATE_DATABASE_URL", "TIKTOK_CLIENT_KEY"):
        os.environ.pop(name, None)
    return folder


def stop_group(process: subprocess.Popen, first: int = signal.SIGTERM) -> None:
    """Stop a process started in its own session, and all its children; kill what lingers."""
    os.killpg(process.pid, first)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def start_fleet(connections: int, videos: int) -> tuple:
    """The simulator (seed 5, no zero-video accounts) with `connections` registered through its
    OAuth flow, in the demo's mode and home: (simulator, connection names)."""
    from pipelines import demo
    from simulators.tiktok import SimulatorConfig, TikTokSimulator

    demo.prepare_environment(REPO)
    config = SimulatorConfig(
        seed=5, accounts=connections, videos_per_account=videos, zero_video_every=0
    )
    sim = TikTokSimulator(config)
    base_url = sim.start()
    os.environ["TIKTOK_API_BASE_URL"] = os.environ["TIKTOK_AUTH_BASE_URL"] = base_url
    return sim, register(sim, connections)


class PeakMemory(threading.Thread):
    """Samples the summed RSS of a process tree (the daemon and the runs it launches)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.peak_processes = pid, 0, 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            pids = _descendants(self.pid)
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in pids))
            self.peak_processes = max(self.peak_processes, len(pids))

    def stop(self) -> None:
        self._stop.set()


def register(sim: object, count: int) -> list[str]:
    """The demo app's connections, authorized through the simulator's OAuth flow."""
    from pipelines.demo import ALL_SCOPES, DEMO_REDIRECT_URI
    from resources import settings
    from resources.connections.store import ConnectionStore
    from resources.database import make_engine
    from resources.tiktok.apps import DEMO_APP, load_app
    from resources.tiktok.oauth import OAuthClient

    oauth = OAuthClient(load_app(DEMO_APP), api_base_url=sim.base_url)
    store = ConnectionStore(make_engine(settings.state_database_url()))
    grants = []
    for index in range(count):
        code = sim.authorize(index, sorted(ALL_SCOPES), DEMO_REDIRECT_URI)
        grant = oauth.exchange_code(code, redirect_uri=DEMO_REDIRECT_URI)
        grants.append((f"fleet-{index:04d}", DEMO_APP, grant, None))
    store.save_grants(grants)
    return [name for name, *_ in grants]


def day_runs(instance: object, day: str) -> list:
    import dagster as dg

    from pipelines.defs.sync.schedules import SYNC_DAY_TAG

    return list(instance.get_run_records(dg.RunsFilter(tags={SYNC_DAY_TAG: day})))


def wait_for_day(instance: object, day: str, names: list[str], timeout_s: float) -> list:
    """Until the schedule's runs of `day` cover every connection and have all ended."""
    from pipelines.defs.sync.schedules import covered_today
    from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME

    deadline = time.monotonic() + timeout_s
    ordered = instance.get_dynamic_partitions(CONNECTION_PARTITIONS_NAME)
    while time.monotonic() < deadline:
        records = day_runs(instance, day)
        covered = covered_today(instance, day, ordered)
        statuses = [record.dagster_run.status.value for record in records]
        if records and covered >= set(names) and all(s in FINISHED for s in statuses):
            return records
        time.sleep(2)
    raise SystemExit(f"the daily sync of {day} did not finish within {timeout_s:.0f} s")


def check_rows(
    sim: object, names: list[str], changes: object | None, day: str, run_ids: list[str]
) -> dict:
    """The warehouse against the simulator, for every connection."""
    import sqlalchemy as sa

    from resources import settings

    engine = sa.create_engine(settings.warehouse_url())
    with engine.connect() as db:
        live = dict(
            db.execute(
                sa.text(
                    "SELECT connection_name, COUNT(*) FROM tiktok_videos "
                    "WHERE deleted_at IS NULL GROUP BY connection_name"
                )
            ).all()
        )
        snapshots = dict(
            db.execute(
                sa.text(
                    # Written by this day's runs: both simulated days fall on one real date.
                    "SELECT connection_name, COUNT(*) FROM tiktok_video_metrics_daily "
                    "WHERE snapshot_date = :day AND _load_id IN :runs GROUP BY connection_name"
                ).bindparams(sa.bindparam("runs", expanding=True)),
                {"day": day, "runs": run_ids},
            ).all()
        )
        crm = dict(
            db.execute(sa.text("SELECT connection_name, COUNT(*) FROM crm_videos GROUP BY 1")).all()
        )
        stored = dict(
            db.execute(
                sa.text("SELECT connection_name, COUNT(*) FROM tiktok_videos GROUP BY 1")
            ).all()
        )
        deleted = {
            row[0]
            for row in db.execute(
                sa.text("SELECT id FROM tiktok_videos WHERE deleted_at IS NOT NULL")
            )
        }
        profiles = db.execute(sa.text("SELECT COUNT(*) FROM tiktok_profiles")).scalar()
    wrong = []
    for index, name in enumerate(names):
        visible = sim._state.visible_count(index)
        if (live.get(name, 0), snapshots.get(name, 0), crm.get(name, 0)) != (
            visible,
            visible,
            stored.get(name, 0),
        ):
            wrong.append(name)
    missed_deletions = 0
    if changes is not None:
        expected = {vid for ids in changes.deleted.values() for vid in ids}
        missed_deletions = len(expected - deleted)
    return {
        "connections_wrong": len(wrong),
        "wrong_sample": wrong[:5],
        "missed_deletions": missed_deletions,
        "profiles": profiles,
        "rows_correct": not wrong and not missed_deletions and profiles == len(names),
    }


def measure_day(instance: object, sim: object, day: str, names: list[str], timeout: float) -> dict:
    records = wait_for_day(instance, day, names, timeout)
    traffic = sim.stats()
    starts = [r.start_time for r in records if r.start_time]
    ends = [r.end_time for r in records if r.end_time]
    created = min(r.create_timestamp.timestamp() for r in records)
    wall = max(ends) - min(starts)
    requests = {e: traffic.get(e, {}).get("requests", 0) for e in DISPLAY_ENDPOINTS}
    rate_limited = sum(traffic.get(e, {}).get("rate_limited", 0) for e in DISPLAY_ENDPOINTS)
    lower_bound = max(count / (LIMIT_PER_MINUTE / 60) for count in requests.values())
    failed = _failed_connections(instance, records)
    return {
        "runs": len(records),
        "failed_runs": sum(r.dagster_run.status.value != "SUCCESS" for r in records),
        "wall_s": round(wall, 1),
        "requests": requests,
        "rate_limited": rate_limited,
        "rate_limited_share": round(rate_limited / max(1, sum(requests.values())), 4),
        "lower_bound_s": round(lower_bound, 1),
        "vs_lower_bound": round(wall / lower_bound, 3) if lower_bound else None,
        # From the schedule's tick (the first run created) to the end: queueing and launching.
        "tick_to_end_s": round(max(ends) - created, 1),
        "launch_s": round(min(starts) - created, 1),
        "failed_connections": failed,
    }


def _failed_connections(instance: object, records: list) -> int:
    import dagster as dg

    failed = 0
    for record in records:
        if record.dagster_run.status.value == "SUCCESS":
            continue
        logs = instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
        )
        for entry in logs:
            data = entry.dagster_event.step_failure_data.user_failure_data
            if data is not None and "connections_failed" in data.metadata:
                failed += int(data.metadata["connections_failed"].value)
            else:
                failed += 1
    return failed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--days", type=int, default=2, choices=(1, 2))
    parser.add_argument("--latency-low", type=int, default=50)
    parser.add_argument("--latency-high", type=int, default=150)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--executor", choices=("in_process", "multiprocess"), default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default: SYNC_BATCH_SIZE")
    args = parser.parse_args(argv)

    # The schedule ticks every minute; it syncs once a day.
    folder = fresh_home("bench-daily-", SYNC_CRON="* * * * *")
    os.environ.pop("SYNC_BATCH_SIZE", None)
    if args.executor:
        os.environ["SYNC_EXECUTOR"] = args.executor
    if args.batch_size:
        os.environ["SYNC_BATCH_SIZE"] = str(args.batch_size)

    import dagster as dg

    from pipelines.defs.sync.schedules import SYNC_DAY_TAG
    from pipelines.runner import add_partitions

    started_setup = time.monotonic()
    sim, names = start_fleet(args.connections, args.videos)
    with dg.DagsterInstance.get() as instance:
        add_partitions(instance, names)
    print(f"setup: {len(names)} connections in {time.monotonic() - started_setup:.1f} s")
    sim.set(latency_ms=(args.latency_low, args.latency_high))  # TikTok's latency from here on
    log = folder / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    memory = PeakMemory(daemon.pid)
    memory.start()
    days: list[dict] = []
    try:
        with dg.DagsterInstance.get() as instance:
            changes = None
            for number in range(1, args.days + 1):
                sim.reset_stats()
                day = datetime.now(UTC).strftime("%Y-%m-%d")
                result = measure_day(instance, sim, day, names, args.timeout)
                run_ids = [record.dagster_run.run_id for record in day_runs(instance, day)]
                result |= check_rows(sim, names, changes, day, run_ids)
                result["day"] = number
                days.append(result)
                print(f"day {number}: {json.dumps(result)}")
                if number < args.days:
                    # A day passes: today's runs become yesterday's, creators change things.
                    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
                    for record in day_runs(instance, day):
                        instance.add_run_tags(record.dagster_run.run_id, {SYNC_DAY_TAG: yesterday})
                    changes = sim.advance_days(1)
    finally:
        memory.stop()
        stop_group(daemon)
        sim.stop()
    summary = {
        "connections": len(names),
        "videos": args.videos,
        "executor": os.environ.get("SYNC_EXECUTOR") or "in_process",
        "batch_size": int(os.environ.get("SYNC_BATCH_SIZE") or 0) or "default",
        "runs": sum(day["runs"] for day in days),
        "wall_s": max(day["wall_s"] for day in days),
        "lower_bound_s": max(day["lower_bound_s"] for day in days),
        "vs_lower_bound": max(day["vs_lower_bound"] or 0 for day in days),
        "rate_limited_share": max(day["rate_limited_share"] for day in days),
        "failed_connections": sum(day["failed_connections"] for day in days),
        "rows_correct": all(day["rows_correct"] for day in days),
        "peak_rss_mb": round(memory.peak_kb / 1024, 1),
        "peak_processes": memory.peak_processes,
        "days": days,
    }
    print(json.dumps(summary))
    shutil.rmtree(folder, ignore_errors=True)
    return summary


if __name__ == "__main__":
    main()

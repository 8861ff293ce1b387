"""The user's clock: `sync --all`, the daily schedule and a plain script, back to back, per day.

`python -m bench.clock [--connections 1000] [--videos 40] [--days 2] [--gap 62]`

One process tree: the TikTok simulator at TikTok's documented limit (600 requests per sliding
minute per endpoint, per app, 50-150 ms latency) with the connections registered through the real
OAuth flow, and `dagster-daemon` on a fresh instance with the project's dagster.yaml, running from
the start as in production. Each day (the simulator's day changes only between days), three
contenders read the same data, each after a fresh rate window (`--gap` seconds, longer than the
budget's 61 s, and the simulator's windows reset):

- schedule: the daily schedule (SYNC_CRON every minute here), timed from its tick (the scheduled
  time the daemon evaluates, Dagster's scheduled-execution-time tag on its runs) to the last run's
  end. Day 1 is started by adding the connections' partitions, day 2 by re-tagging day 1's runs
  as yesterday's, which is what a passing day does to the schedule's once-a-day rule;
- baseline: `bench.clock_baseline`, a plain httpx pool of 16 threads retrying 429s, reading every
  profile and video page into SQLite, timed from its start to its exit. Its tokens are grants of
  its own (the pipeline's would rotate under it);
- sync_all: `tiktok-crm-sync sync --all` as a subprocess, from the command's start to its exit.

Per contender and day: wall_s; bound_s (busiest endpoint's requests / 10 per s); burst_bound_s
(the least a sliding window allows: whole windows at once, so floor((N - 1) / 600) windows of
60 s, plus the latency tail); rate_limited (429s); max_in_60s per endpoint (the simulator's most
admitted in any 60 s); rows_correct (bench.daily's check for the pipeline, per-connection counts
for the baseline); peak_rss_mb of its process tree; and where the seconds went, from its origin:
the first run created, runs created (the last planned event), first run start, first and last
request (the simulator's log), last run end. The final line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.daily import (
    DISPLAY_ENDPOINTS,
    LIMIT_PER_MINUTE,
    REPO,
    PeakMemory,
    check_rows,
    day_runs,
    fresh_home,
    start_fleet,
    stop_group,
    wait_for_day,
)

# Dagster tags each run a schedule launches with its tick's time (a hidden tag: read as data).
SCHEDULED_TIME_TAG = ".dagster/scheduled_execution_time"
CLI_TAGS = {"launched_by": "tiktok-crm-sync"}  # how pipelines.runner tags the CLI's runs
BASELINE = "import sys; from bench.clock_baseline import main; main(sys.argv[1:])"


def burst_bound_s(requests: int, latency_s: float) -> float:
    """The least time TikTok's sliding window allows `requests` to one endpoint: each window's 600
    go at once, the next only as the first leave it, the last arrives after its latency."""
    return 0.0 if requests == 0 else (requests - 1) // LIMIT_PER_MINUTE * 60.0 + latency_s


def _at(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round(moment - origin, 1)


def traffic(sim: object, origin: float, latency_s: float) -> dict:
    """What the simulator saw since its last reset, with times in seconds after `origin`."""
    stats, admitted = sim.stats(), sim.admissions()
    offset = sim.now() - time.time()  # advance_days moves the simulator's clock, not ours
    requests = {e: stats[e]["requests"] for e in DISPLAY_ENDPOINTS}
    moments = [t - offset for e in DISPLAY_ENDPOINTS for t in admitted.get(e, [])]
    busiest = max(requests.values())
    most = sim.most_in_window()
    return {
        "requests": requests,
        "bound_s": round(busiest / (LIMIT_PER_MINUTE / 60), 1),
        "burst_bound_s": round(burst_bound_s(busiest, latency_s), 1),
        "rate_limited": sum(stats[e]["rate_limited"] for e in DISPLAY_ENDPOINTS),
        "max_in_60s": {e: most.get(e, 0) for e in DISPLAY_ENDPOINTS},
        "first_request_s": _at(min(moments, default=None), origin),
        "last_request_s": _at(max(moments, default=None), origin),
    }


def run_marks(instance: object, records: list, origin: float) -> dict:
    """Where a contender's Dagster seconds went, from the run records and their events."""
    import dagster as dg

    created = [r.create_timestamp.timestamp() for r in records]
    planned = []
    for record in records:  # a run is created once its planned events are written
        logs = instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        )
        planned += [max(entry.timestamp for entry in logs)] if logs else []
    starts = [r.start_time for r in records if r.start_time]
    ends = [r.end_time for r in records if r.end_time]
    return {
        "runs": len(records),
        "failed_runs": sum(r.dagster_run.status.value != "SUCCESS" for r in records),
        "first_run_created_s": _at(min(created), origin),
        "runs_created_s": _at(max(planned or created), origin),
        "first_run_start_s": _at(min(starts, default=None), origin),
        "last_run_end_s": _at(max(ends, default=None), origin),
    }


def pipeline_rows(sim: object, names: list[str], changes: object, records: list) -> dict:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    checked = check_rows(sim, names, changes, day, [r.dagster_run.run_id for r in records])
    return {
        "rows_correct": checked["rows_correct"],
        "connections_wrong": checked["connections_wrong"],
    }


def fresh_window(sim: object, gap_s: float) -> None:
    """Let the budget's window (61 s) empty, then reset the simulator's windows and counts."""
    time.sleep(gap_s)
    sim.reset_rate_windows()
    sim.reset_stats()


def baseline_tokens(sim: object, count: int) -> list[str]:
    """Grants of the baseline's own: the pipeline's tokens rotate when it refreshes them."""
    from pipelines.demo import ALL_SCOPES, DEMO_REDIRECT_URI
    from resources.tiktok.apps import DEMO_APP, load_app
    from resources.tiktok.oauth import OAuthClient

    oauth = OAuthClient(load_app(DEMO_APP), api_base_url=sim.base_url)

    def grant(index: int) -> str:
        code = sim.authorize(index, sorted(ALL_SCOPES), DEMO_REDIRECT_URI)
        return oauth.exchange_code(code, redirect_uri=DEMO_REDIRECT_URI).access_token

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(grant, range(count)))


def run_schedule(
    instance: object, sim: object, names: list[str], args: object, daemon: int
) -> dict:
    """The schedule's day: started by the caller's trigger, timed from the tick to the last end."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    memory = PeakMemory(daemon)
    memory.start()
    records = wait_for_day(instance, day, names, args.timeout)
    memory.stop()
    ticks = [r.dagster_run.tags.get(SCHEDULED_TIME_TAG) for r in records]
    tick = min(datetime.fromisoformat(t).timestamp() for t in ticks if t)
    marks = run_marks(instance, records, tick)
    wall = marks["last_run_end_s"]
    return {"wall_s": wall, **marks, **traffic(sim, tick, args.latency_high / 1000)} | {
        "peak_rss_mb": round(memory.peak_kb / 1024, 1),
        "records": records,
    }


def run_process(command: list[str], log: Path, timeout: float) -> tuple[float, float, int, float]:
    """Run `command` to its exit: (start, wall seconds, exit code, peak RSS of its tree in MB)."""
    started = time.time()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        memory = PeakMemory(process.pid)
        memory.start()
        code = process.wait(timeout=timeout)
    wall = time.time() - started
    memory.stop()
    return started, wall, code, round(memory.peak_kb / 1024, 1)


def run_baseline(
    sim: object, names: list[str], tokens: list[str], folder: Path, args: object
) -> dict:
    day_folder = Path(tempfile.mkdtemp(dir=folder))
    tokens_file = day_folder / "tokens.json"
    tokens_file.write_text(json.dumps(tokens))
    command = [sys.executable, "-c", BASELINE, "--base-url", sim.base_url, "--tokens"]
    command += [str(tokens_file), "--db", str(day_folder / "baseline.db")]
    log = day_folder / "baseline.log"
    started, wall, code, rss = run_process(command, log, args.timeout)
    if code != 0:
        print(f"baseline exited {code}; its last lines:\n{log.read_text()[-3000:]}")
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    stored = json.loads(lines[-1]) if code == 0 and lines else {"profiles": 0, "videos": []}
    expected = [sim._state.visible_count(index) for index in range(len(names))]
    return {
        "wall_s": round(wall, 1),
        "exit_code": code,
        "rows": {"profiles": stored["profiles"], "videos": sum(stored["videos"])},
        "rows_correct": stored["profiles"] == len(names) and stored["videos"] == expected,
        "peak_rss_mb": rss,
        **traffic(sim, started, args.latency_high / 1000),
    }


def run_sync_all(instance: object, sim: object, folder: Path, args: object) -> dict:
    import dagster as dg

    cli = str(Path(sys.executable).parent / "tiktok-crm-sync")
    log = Path(tempfile.mkdtemp(dir=folder)) / "sync.log"
    started, wall, code, rss = run_process([cli, "sync", "--all"], log, args.timeout)
    if code != 0:  # the folder goes at the end: what the command said goes with the figures
        tail = "\n".join(log.read_text().splitlines()[-40:])
        print(f"sync --all exited {code}; its last lines:\n{tail}")
    after = datetime.fromtimestamp(started, UTC)
    records = list(instance.get_run_records(dg.RunsFilter(tags=CLI_TAGS, created_after=after)))
    return {
        "wall_s": round(wall, 1),
        "exit_code": code,
        **run_marks(instance, records, started),
    } | {
        **traffic(sim, started, args.latency_high / 1000),
        "peak_rss_mb": rss,
        "records": records,
    }


def start_daemon(folder: Path) -> subprocess.Popen:
    import dagster as dg

    from pipelines.instance_home import create_instance_storage

    create_instance_storage()  # before the daemon and this process race to create it
    log = (folder / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    with dg.DagsterInstance.get() as instance:  # the schedule must be live before its trigger
        while "SCHEDULER" not in instance.get_daemon_heartbeats():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"dagster-daemon did not start; see {folder / 'daemon.log'}")
            time.sleep(1)
    return daemon


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--days", type=int, default=2, choices=(1, 2))
    parser.add_argument("--gap", type=float, default=62.0, help="seconds between contenders")
    parser.add_argument("--latency-low", type=int, default=50)
    parser.add_argument("--latency-high", type=int, default=150)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)

    # The schedule ticks every minute; it syncs once a day.
    folder = fresh_home("bench-clock-", SYNC_CRON="* * * * *")

    import dagster as dg

    from pipelines.defs.sync.schedules import SYNC_DAY_TAG
    from pipelines.runner import add_partitions

    setup_started = time.monotonic()
    sim, names = start_fleet(args.connections, args.videos)
    daemon = start_daemon(folder)  # before the partitions: no tick may catch the fleet half-made
    print(f"setup: {len(names)} connections in {time.monotonic() - setup_started:.1f} s")
    sim.set(latency_ms=(args.latency_low, args.latency_high))  # TikTok's latency from here on
    days: list[dict] = []
    try:
        with dg.DagsterInstance.get() as instance:
            changes = None
            for number in range(1, args.days + 1):
                if number > 1:
                    changes = sim.advance_days(1)  # creators post, edit and delete
                tokens = baseline_tokens(sim, len(names))
                fresh_window(sim, args.gap if number > 1 else 0.0)
                if number == 1:
                    add_partitions(instance, names)  # the schedule's next tick takes the fleet
                else:  # a day passes for the schedule: yesterday's runs no longer cover today
                    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
                    today = datetime.now(UTC).strftime("%Y-%m-%d")
                    for record in day_runs(instance, today):
                        instance.add_run_tags(record.dagster_run.run_id, {SYNC_DAY_TAG: yesterday})
                schedule = run_schedule(instance, sim, names, args, daemon.pid)
                schedule |= pipeline_rows(sim, names, changes, schedule.pop("records"))
                fresh_window(sim, args.gap)
                baseline = run_baseline(sim, names, tokens, folder, args)
                fresh_window(sim, args.gap)
                sync_all = run_sync_all(instance, sim, folder, args)
                sync_all |= pipeline_rows(sim, names, changes, sync_all.pop("records"))
                result = {"day": number, "schedule": schedule, "baseline": baseline}
                result["sync_all"] = sync_all
                print(f"day {number}: {json.dumps(result)}")
                days.append(result)
    finally:
        stop_group(daemon)
        sim.stop()
    summary = {
        "connections": len(names),
        "videos": args.videos,
        "cpus": os.cpu_count(),
        "latency_ms": [args.latency_low, args.latency_high],
        "days": days,
    }
    print(json.dumps(summary))
    shutil.rmtree(folder, ignore_errors=True)
    return summary


if __name__ == "__main__":
    main()

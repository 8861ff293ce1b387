"""Benchmark: extract N connections x M videos through the shared rate budget.

    python -m bench.extract [--connections 1000] [--videos 60] [--target-seconds 100]
    python -m bench.extract --scenario adaptive [--connections 450] [--videos 20]

Scenario `scaled` (the default) measures the budget against a naive loop; scenario `adaptive`
measures how the budget learns a limit lower than configured (see `adaptive` below).

Each connection does what its sync does: the profile (1 user_info call), every video (M/20
video_list pages) and fresh metrics for every video (M/20 video_query batches of 20). The
simulator answers after 50-150 ms and enforces a per-app sliding-minute limit; the budget limits
are scaled from the workload so the run takes about `--target-seconds`, proportionally per
endpoint so that every endpoint is a bottleneck at once (the simulator enforces the largest).

Figures, all measured in this one run:
- utilization: per endpoint, achieved requests/s between its first and last request divided by
  its configured limit per second; `worst` is the lowest endpoint.
- rate_limited_share: 429 answers / all requests.
- vs_lower_bound: wall time / the time the configured limits allow at a steady rate
  (max over endpoints of requests / limit per second). `vs_lower_bound_with_burst` credits the
  first full window TikTok's sliding minute would let through at once.
- vs_naive: our wall time / the naive wall time. The naive baseline is a plain sequential loop
  with the same client minus budget and concurrency, on a fresh simulator with the same data and
  latency. It would take far too long for all N, so it runs a sample of `--naive-sample`
  connections and is extrapolated linearly (the JSON says so).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.extract_setup import (
    Recorder,
    connect_all,
    connection_name,
    machine_facts,
    start_simulator,
)
from resources.connections.store import ConnectionStore
from resources.connections.tokens import ConnectionTokens
from resources.ratelimit.budget import (
    DEFAULT_LIMIT_PER_MINUTE,
    ENDPOINTS,
    SAFETY_MARGIN,
    RequestBudget,
    parse_limits,
)
from resources.tiktok.apps import DEMO_APP, load_app
from resources.tiktok.breaker import CircuitBreaker
from resources.tiktok.client import MAX_PAGE_SIZE, CallStats, RateBudget, TikTokClient
from resources.tiktok.extract import extract_profile, extract_videos, refresh_metrics
from resources.tiktok.oauth import OAuthClient
from resources.tiktok.pagination import PageWalk

WORKLOAD = "profile + all videos + metrics refresh of all videos, per connection"


def sync_one(
    store: ConnectionStore,
    name: str,
    base_url: str,
    http: httpx.Client,
    budget: RateBudget | None,
) -> CallStats:
    """One connection's extraction with the production code path (no warehouse writes)."""
    connection = store.get(name)
    oauth = OAuthClient(load_app(DEMO_APP), api_base_url=base_url, http=http)
    tokens = ConnectionTokens(store, name, oauth)
    client = TikTokClient(
        tokens, base_url=base_url, http=http, budget=budget, breaker=CircuitBreaker()
    )
    extract_profile(client, connection.scopes)
    ids = [video.id for video in extract_videos(client, connection.scopes, PageWalk())]
    for _asked, _found in refresh_metrics(client, ids):
        pass
    return client.stats


def run_all(
    names: list[str], workers: int, job: Callable[[str], CallStats]
) -> tuple[float, list[CallStats], list[str]]:
    """(wall seconds, stats of the connections that succeeded, names that failed)."""
    done: list[CallStats] = []
    failed: list[str] = []

    def guarded(name: str) -> None:
        try:
            done.append(job(name))
        except Exception as err:  # a failed connection is counted, never fatal to the benchmark
            failed.append(f"{name}: {type(err).__name__}: {err}"[:300])

    started = time.monotonic()
    if workers == 1:
        for name in names:
            guarded(name)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(guarded, names))
    return time.monotonic() - started, done, failed


def demand(connections: int, videos: int) -> dict[str, int]:
    pages = max(1, math.ceil(videos / MAX_PAGE_SIZE))
    batches = math.ceil(videos / MAX_PAGE_SIZE)
    return {
        "user_info": connections,
        "video_list": connections * pages,
        "video_query": connections * batches,
    }


def scaled_limits(requests: dict[str, int], target_s: float, margin: float) -> dict[str, int]:
    """Limits per minute that let each endpoint's requests through in `target_s`."""
    return {
        endpoint: max(1, math.ceil(count * 60 / target_s / (1 - margin)))
        for endpoint, count in requests.items()
    }


def utilization(recorder: Recorder, limits: dict[str, int]) -> dict[str, float]:
    result = {}
    for endpoint in ENDPOINTS:
        sent = sorted(recorder.sent.get(endpoint, []))
        if len(sent) < 2 or sent[-1] <= sent[0]:
            continue
        achieved = (len(sent) - 1) / (sent[-1] - sent[0])
        result[endpoint] = round(achieved / (limits[endpoint] / 60), 4)
    return result


def measured(args: argparse.Namespace, limits: dict[str, int], folder: Path) -> dict:
    sim_limit = max(limits.values())
    simulator = start_simulator(args.connections, args.videos, sim_limit)
    try:
        store = connect_all(simulator, folder, args.connections)
        simulator.set(latency_ms=(args.latency_low, args.latency_high))
        simulator.reset_stats()
        url = args.budget_url or f"sqlite:///{folder / 'budget.db'}"
        budget = RequestBudget(url, limits, margin=args.margin)
        scope = budget.scoped(f"bench-{uuid.uuid4().hex[:8]}")  # a fresh window in a shared store
        recorder = Recorder()
        http = recorder.http_client(args.workers)
        names = [connection_name(i) for i in range(args.connections)]
        wall, stats, failed = run_all(
            names,
            args.workers,
            lambda name: sync_one(store, name, simulator.base_url, http, scope),
        )
        http.close()
        budget.close()
        return {
            "wall": wall,
            "stats": stats,
            "failed": failed,
            "recorder": recorder,
            "sim": simulator.stats(),
            "budget_backend": budget.display_url.split(":", 1)[0],
        }
    finally:
        simulator.stop()


def naive(args: argparse.Namespace, folder: Path) -> dict:
    sample = min(args.naive_sample, args.connections)
    simulator = start_simulator(args.connections, args.videos, 600)
    try:
        store = connect_all(simulator, folder, sample)
        simulator.set(latency_ms=(args.latency_low, args.latency_high))
        http = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
        names = [connection_name(i) for i in range(sample)]
        wall, stats, failed = run_all(
            names, 1, lambda name: sync_one(store, name, simulator.base_url, http, None)
        )
        http.close()
        return {"sample": sample, "wall": wall, "failed": failed, "stats": stats}
    finally:
        simulator.stop()


def real_limit_utilization(
    recorder: Recorder, real_limit: int, since: float
) -> dict[str, float | None]:
    """Per endpoint: accepted answers per second from `since` to the endpoint's last accepted
    answer, divided by TikTok's real limit per second (None: too few answers to measure)."""
    result: dict[str, float | None] = {}
    for endpoint in ENDPOINTS:
        accepted = [t for t, status in recorder.answered.get(endpoint, []) if status == 200]
        after = [t for t in accepted if t >= since]
        if len(after) < 2 or after[-1] <= since:
            result[endpoint] = None
            continue
        result[endpoint] = round(len(after) / (after[-1] - since) / (real_limit / 60), 4)
    return result


def adaptive(args: argparse.Namespace) -> dict:
    """TikTok grants a quarter of the configured budget; the run starts with the default budget.

    The simulator enforces `DEFAULT_LIMIT_PER_MINUTE // --real-limit-divisor` per endpoint (a
    sliding minute, per app), the budget starts at the documented 600 and must learn the rest.
    Goal: no failed connection, 429s <= 5% of requests over the run, and after the first minute
    (where the first window is spent and learned from) accepted requests >= 80% of the real limit
    on the endpoints with the most work. Utilization: accepted answers per second from one minute
    after the first request to the endpoint's last accepted answer, over the real limit per second.
    """
    configured = parse_limits(None)
    real_limit = max(1, DEFAULT_LIMIT_PER_MINUTE // args.real_limit_divisor)
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        folder = Path(tmp)
        simulator = start_simulator(args.connections, args.videos, real_limit)
        try:
            store = connect_all(simulator, folder, args.connections)
            simulator.set(latency_ms=(args.latency_low, args.latency_high))
            simulator.reset_stats()
            budget = RequestBudget(
                args.budget_url or f"sqlite:///{folder / 'budget.db'}", configured
            )
            scope = budget.scoped(f"bench-{uuid.uuid4().hex[:8]}")  # a fresh window, a fresh limit
            recorder = Recorder()
            http = recorder.http_client(args.workers)
            names = [connection_name(i) for i in range(args.connections)]
            wall, stats, failed = run_all(
                names,
                args.workers,
                lambda name: sync_one(store, name, simulator.base_url, http, scope),
            )
            learned = {endpoint: scope.limit(endpoint) for endpoint in ENDPOINTS}
            http.close()
            backend = budget.backend
            budget.close()
            sim = simulator.stats()
        finally:
            simulator.stop()
    total = sum(sum(s.requests.values()) for s in stats)
    limited = sum(s.rate_limited for s in stats)
    started = recorder.first_sent() or 0.0
    util = real_limit_utilization(recorder, real_limit, started + 60.0)
    # Only an endpoint with the most work can use TikTok's whole limit; the others are held back
    # by the workload (with 60 videos a connection asks user_info once, video_list three times).
    wanted = demand(args.connections, args.videos)
    bottlenecks = [e for e in ENDPOINTS if wanted[e] >= 0.9 * max(wanted.values())]
    measured_util = [util[e] for e in bottlenecks if util[e] is not None]
    return {
        "benchmark": "extract",
        "scenario": "adaptive",
        "connections": args.connections,
        "videos_per_connection": args.videos,
        "workload": WORKLOAD,
        "workers": args.workers,
        "latency_ms": [args.latency_low, args.latency_high],
        "configured_limits_per_minute": configured,
        "real_limit_per_minute": real_limit,
        "budget_backend": backend,
        "requests": total,
        "wall_s": round(wall, 2),
        "rate_limited": limited,
        "rate_limited_share": round(limited / total, 5) if total else 0.0,
        "simulator_429s": sum(row["rate_limited"] for row in sim.values() if isinstance(row, dict)),
        "failed_connections": len(failed),
        "failures_sample": failed[:3],
        "learned_limit": learned,
        "real_limit_utilization_after_first_minute": util
        | {"worst_bottleneck": min(measured_util) if measured_util else None},
        "bottleneck_endpoints": bottlenecks,
        "rate_limited_by_endpoint": {
            e: sum(s.rate_limited_by_endpoint[e] for s in stats) for e in ENDPOINTS
        },
        "retries": sum(s.retries for s in stats),
        "seconds_waited_for_budget": round(sum(s.budget_wait_s for s in stats), 1),
        "goal_met": not failed
        and (limited / total if total else 0.0) <= 0.05
        and bool(measured_util)
        and min(measured_util) >= 0.8,
        "machine": machine_facts(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("scaled", "adaptive"), default="scaled")
    parser.add_argument("--connections", type=int, default=None, help="scaled 1000, adaptive 450")
    parser.add_argument("--videos", type=int, default=None, help="scaled 60, adaptive 20")
    parser.add_argument("--target-seconds", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=None, help="scaled 64, adaptive 32")
    parser.add_argument("--latency-low", type=int, default=50)
    parser.add_argument("--latency-high", type=int, default=150)
    parser.add_argument("--margin", type=float, default=SAFETY_MARGIN)
    parser.add_argument("--naive-sample", type=int, default=30)
    parser.add_argument("--budget-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument(
        "--real-limit-divisor",
        type=int,
        default=4,
        help="adaptive: TikTok's real limit is the default 600 divided by this",
    )
    args = parser.parse_args(argv)
    adaptive_run = args.scenario == "adaptive"
    if args.connections is None:
        args.connections = 450 if adaptive_run else 1000
    if args.videos is None:
        # 20 videos: one request to each endpoint per connection, so all three are bottlenecks.
        args.videos = 20 if adaptive_run else 60
    if args.workers is None:
        args.workers = 32 if adaptive_run else 64  # adaptive: the threads of one batched step
    if adaptive_run:
        return report(adaptive(args))

    requests = demand(args.connections, args.videos)
    limits = scaled_limits(requests, args.target_seconds, args.margin)
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        (Path(tmp) / "ours").mkdir()
        (Path(tmp) / "naive").mkdir()
        naive_run = naive(args, Path(tmp) / "naive")
        ours = measured(args, limits, Path(tmp) / "ours")

    stats: list[CallStats] = ours["stats"]
    total = sum(sum(s.requests.values()) for s in stats)
    limited = sum(s.rate_limited for s in stats)
    util = utilization(ours["recorder"], limits)
    steady_bound = max(requests[e] / (limits[e] / 60) for e in requests)
    burst_bound = max(max(0, requests[e] - limits[e]) / (limits[e] / 60) for e in requests)
    naive_estimate = naive_run["wall"] * args.connections / naive_run["sample"]
    result = {
        "benchmark": "extract",
        "connections": args.connections,
        "videos_per_connection": args.videos,
        "workload": WORKLOAD,
        "workers": args.workers,
        "latency_ms": [args.latency_low, args.latency_high],
        "limits_per_minute": limits,
        "simulator_limit_per_minute": max(limits.values()),
        "budget_backend": ours["budget_backend"],
        "budget_margin": args.margin,
        "requests": total,
        "requests_by_endpoint": {e: len(v) for e, v in ours["recorder"].sent.items()},
        "wall_s": round(ours["wall"], 2),
        "lower_bound_s": round(steady_bound, 2),
        "utilization": util | {"worst": min(util.values(), default=0.0)},
        "rate_limited": limited,
        "rate_limited_share": round(limited / total, 5) if total else 0.0,
        "simulator_429s": sum(
            row["rate_limited"] for row in ours["sim"].values() if isinstance(row, dict)
        ),
        "failed_connections": len(ours["failed"]),
        "failures_sample": ours["failed"][:3],
        "seconds_waited_for_budget": round(sum(s.budget_wait_s for s in stats), 1),
        "vs_lower_bound": round(ours["wall"] / steady_bound, 4),
        "vs_lower_bound_with_burst": round(ours["wall"] / burst_bound, 4) if burst_bound else None,
        "naive_sample_connections": naive_run["sample"],
        "naive_sample_wall_s": round(naive_run["wall"], 2),
        "naive_failed_connections": len(naive_run["failed"]),
        "naive_wall_s_extrapolated": round(naive_estimate, 1),
        "naive_note": f"sequential loop on {naive_run['sample']} connections, scaled linearly "
        f"to {args.connections}",
        "vs_naive": round(ours["wall"] / naive_estimate, 4),
    }
    return report(result | {"machine": machine_facts()})


def report(result: dict) -> dict:
    """Print the figures, then the whole result as one JSON line (the last line)."""
    for key, value in result.items():
        if key not in ("failures_sample",):
            print(f"{key:>28}: {value}")
    print(json.dumps(result, separators=(",", ":")))
    return result


if __name__ == "__main__":
    main()

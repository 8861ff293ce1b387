"""The daily sync of many connections: concurrent, each connection on its own.

`sync_connections` works on a run's connections in a thread pool: a step's wall time is then set by
TikTok's request budget (shared by every thread, process and machine, `resources.ratelimit.budget`),
not by the latency of one request after another. Each connection goes through its whole sync in one
thread: profile, videos, quality checks, CRM tables, CRM pushes. A connection that fails stops there
and is reported with its error; every other connection completes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed

from resources.connections.store import ACTIVE, NEEDS_RECONNECT, Connection, ConnectionStore
from resources.connections.tokens import reconnect_hint
from resources.tiktok.errors import NeedsReconnect
from services import progress, quality
from services.asset_names import PROFILE_ASSET, SOURCE_ASSETS, VIDEOS_ASSET
from services.crm_push import push_connection
from services.crm_records import map_connection
from services.outcome import ConnectionOutcome, Metadata
from services.plan import SyncPlan, SyncTools
from services.profile import sync_profile
from services.videos import sync_connection_videos

WORKERS_VARIABLE = "SYNC_WORKERS"
DEFAULT_WORKERS = 16  # enough to keep 600 requests/minute/endpoint busy at 50-500 ms latency
MAX_WORKERS = 256


class IntegrityHold(RuntimeError):
    """A blocking quality check failed: the connection's CRM records wait for the next sync."""


def sync_workers(environ: Mapping[str, str] = os.environ) -> int:
    raw = (environ.get(WORKERS_VARIABLE) or "").strip()
    if not raw:
        return DEFAULT_WORKERS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise ValueError(
            f"{WORKERS_VARIABLE} must be a whole number of connections synced at once per run, "
            f"from 1 to {MAX_WORKERS} (default {DEFAULT_WORKERS}), not {raw!r}"
        )
    return int(raw)


def active_connection(store: ConnectionStore, name: str) -> Connection:
    """The connection, if it can sync; one that must be reconnected fails without calling TikTok."""
    connection = store.get(name)
    if connection.status == NEEDS_RECONNECT:
        reason = connection.status_reason or reconnect_hint(name)
        raise NeedsReconnect(f"connection {name!r} needs to be reconnected: {reason}")
    if connection.status != ACTIVE:
        raise ValueError(
            f"connection {name!r} is {connection.status}; {reconnect_hint(name)}, or remove it"
        )
    return connection


def sync_connection(tools: SyncTools, plan: SyncPlan, name: str) -> ConnectionOutcome:
    """Everything the plan asks for one connection; never raises: failures are in the outcome."""
    outcome = ConnectionOutcome(name)
    progress = _Progress()
    try:
        with tools.lease(name):
            _sync(tools, plan, name, outcome, progress)
    except Exception as err:  # one connection's failure must not stop the others
        outcome.fail(err, progress.at)
    return outcome


class _Progress:
    """The asset a connection's sync is working on, named in its failure."""

    at: str | None = None


def _sync(
    tools: SyncTools, plan: SyncPlan, name: str, outcome: ConnectionOutcome, progress: _Progress
) -> None:
    synced: set[str] = set()
    failed: set[str] = set()  # TikTok assets that failed: what they feed waits for a re-run
    if plan.extracts:
        progress.at = PROFILE_ASSET if plan.profile else VIDEOS_ASSET
        connection = active_connection(tools.store, name)
        steps = (
            (PROFILE_ASSET, plan.profile, sync_profile),
            (VIDEOS_ASSET, plan.videos, sync_connection_videos),
        )
        for asset, wanted, step in steps:
            if not wanted:
                continue
            progress.at = asset
            try:
                outcome.materialized[asset] = _extract(
                    tools, plan, connection, asset, step, outcome
                )
                synced.add(asset)
            except NeedsReconnect:
                raise  # nothing of this connection can sync until it is reconnected
            except Exception as err:  # the profile and the videos are independent of each other
                outcome.fail(err, asset)
                failed.add(asset)
    else:
        connection = tools.store.get(name)
    progress.at = None
    # Checks run for the assets synced now, or on their own (a check-only launch in the UI).
    checked = {quality.CHECKS[c][0] for c in plan.checks or () if c in quality.CHECKS}
    alone = checked - set(_selected_extracts(plan))
    outcome.checks = quality.evaluate(
        tools.warehouse, tools.store, name, connection.scopes, synced | alone, plan.runs_check
    )
    held = {check.asset: check for check in outcome.checks if check.blocking and not check.passed}
    # Each CRM table and push on its own: one that fails (a CRM refusing its token) leaves the
    # connection's other tables and pushes to complete.
    for mapping in plan.mappings:
        if SOURCE_ASSETS[mapping.source] not in held.keys() | failed:
            asset = mapping.target.object
            try:
                outcome.materialized[asset] = map_connection(
                    tools, plan, mapping, name, connection.scopes, outcome
                )
            except Exception as err:
                outcome.fail(err, asset, mapping)
    for mapping in plan.pushes:
        if SOURCE_ASSETS[mapping.source] not in held.keys() | failed:
            try:
                outcome.pushes[mapping.name] = push_connection(
                    tools, plan, mapping, name, connection.scopes, outcome
                )
            except Exception as err:
                outcome.fail(err, mapping.name, mapping)
    if held and (plan.mappings or plan.pushes):
        hold = IntegrityHold(
            f"connection {name!r}: the CRM records fed by {', '.join(sorted(held))} were held "
            "back because "
            + "; ".join(f"{check.name} failed ({check.description})" for check in held.values())
        )
        outcome.fail(hold, None)


def _selected_extracts(plan: SyncPlan) -> list[str]:
    return [
        asset for asset, on in ((PROFILE_ASSET, plan.profile), (VIDEOS_ASSET, plan.videos)) if on
    ]


def _extract(
    tools: SyncTools,
    plan: SyncPlan,
    connection: Connection,
    asset: str,
    step: Callable[..., Metadata],
    outcome: ConnectionOutcome,
) -> Metadata:
    """One TikTok asset of the connection, with its own client: its calls are its metadata."""
    assert tools.tiktok is not None
    with tools.tiktok.client(connection, tools.store) as client:
        try:
            metadata = step(tools, plan, connection, client, outcome)
        finally:
            calls = outcome.calls[asset] = client.stats.as_metadata()
    return metadata | calls


def sync_connections(
    tools: SyncTools,
    plan: SyncPlan,
    names: Iterable[str],
    workers: int = DEFAULT_WORKERS,
) -> Iterator[ConnectionOutcome]:
    """Outcomes as connections finish (not in order), `workers` syncing at once.

    The workers never wait for the caller: while it records one outcome (a step writes Dagster
    events, which take longer than the connection's own writes), the next connections already
    sync. Connections not started when the caller stops are cancelled.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sync") as pool:
        futures = [pool.submit(sync_connection, tools, plan, name) for name in names]
        try:
            for future in as_completed(futures):
                outcome = future.result()
                progress.notify(outcome)
                yield outcome
        finally:
            pool.shutdown(cancel_futures=True)

"""Code that tests run in separate processes (multiprocessing `spawn`): real cross-process races.

Each worker waits on a shared barrier so that both processes hit the shared store at once.
"""

from __future__ import annotations

import os
from typing import Any


def take_budget(
    url: str, scope: str, attempts: int, limit: int, barrier: Any, results: Any
) -> None:
    """Try `attempts` non-blocking acquisitions on one key; report how many were admitted."""
    from resources.ratelimit.budget import RequestBudget

    budget = RequestBudget(url, {"video_list": limit}, margin=0.0)
    budget.try_acquire("video_list", f"{scope}-warm-up")  # connect before the race starts
    barrier.wait()
    admitted = sum(budget.try_acquire("video_list", scope) for _ in range(attempts))
    budget.close()
    results.put(admitted)


def queue_on_budget(
    url: str, scope: str, attempts: int, limit: int, barrier: Any, results: Any
) -> None:
    """Make `attempts` blocking acquisitions on one key; report (admitted, errors, seconds waited).

    Every acquisition must return: a budget under contention queues, it never refuses.
    """
    from resources.ratelimit.budget import RequestBudget

    budget = RequestBudget(url, {"video_list": limit}, margin=0.0)
    budget.try_acquire("video_list", f"{scope}-warm-up")
    barrier.wait()
    admitted, errors, waited = 0, [], 0.0
    for _ in range(attempts):
        try:
            waited += budget.acquire("video_list", scope)
            admitted += 1
        except Exception as err:  # reported to the parent, which asserts there were none
            errors.append(f"{type(err).__name__}: {err}")
    budget.close()
    results.put((admitted, errors, waited))


def stamp_admissions(
    url: str,
    scope: str,
    attempts: int,
    limit: int,
    window_s: float,
    allowance_s: float,
    barrier: Any,
    results: Any,
) -> None:
    """Make `attempts` blocking acquisitions on one key with a scaled-down window, on the real
    clock; report (the budget's admission stamps, errors)."""
    from resources.ratelimit.budget import RequestBudget

    budget = RequestBudget(
        url, {"video_list": limit}, margin=0.0, window_s=window_s, latency_allowance_s=allowance_s
    )
    budget.try_acquire("video_list", f"{scope}-warm-up")
    barrier.wait()
    stamps, errors = [], []
    for _ in range(attempts):
        try:
            stamps.append(budget.admit("video_list", scope).admitted_at)
        except Exception as err:  # reported to the parent, which asserts there were none
            errors.append(f"{type(err).__name__}: {err}")
    budget.close()
    results.put((stamps, errors))


def sync_profile(
    state_url: str,
    api_base_url: str,
    environ: dict[str, str],
    name: str,
    barrier: Any,
    results: Any,
) -> None:
    """One run reading the connection's profile at the same moment as another process.

    The simulator has expired the access token, so both runs meet `access_token_invalid` on their
    first call and both want to refresh the same rotating refresh token.
    """
    os.environ.update(environ)
    from resources.configurable import TikTokResource
    from resources.connections.store import ConnectionStore
    from resources.database import make_engine
    from resources.tiktok.extract import extract_profile

    store = ConnectionStore(make_engine(state_url))
    connection = store.get(name)
    resource = TikTokResource(api_base_url=api_base_url, backoff_cap_s=0.0)
    barrier.wait()
    try:
        with resource.client(connection, store) as client:
            profile = extract_profile(client, connection.scopes)
            results.put(("ok", profile.user.open_id, client.stats.refreshes))
    except Exception as err:  # reported to the parent, which asserts on it
        results.put(("error", f"{type(err).__name__}: {err}", 0))


def sync_connections(
    state_url: str,
    api_base_url: str,
    environ: dict[str, str],
    names: list[str],
    barrier: Any,
    results: Any,
) -> None:
    """One run syncing `names` (profile, every video, fresh metrics) at the same moment as others.

    The budget comes from the environment (TIKTOK_RATE_LIMIT_URL, TIKTOK_RATE_LIMITS), as in a
    deployed worker. Reports (connection, outcome, requests, 429s) per connection.
    """
    os.environ.update(environ)
    from resources.configurable import TikTokResource
    from resources.connections.store import ConnectionStore
    from resources.database import make_engine
    from resources.tiktok.extract import extract_profile, extract_videos, refresh_metrics
    from resources.tiktok.pagination import PageWalk

    store = ConnectionStore(make_engine(state_url))
    resource = TikTokResource(api_base_url=api_base_url, backoff_cap_s=0.5)
    resource.budget().limit("video_list")  # open the shared budget before the race starts
    barrier.wait()
    for name in names:
        connection = store.get(name)
        try:
            with resource.client(connection, store) as client:
                extract_profile(client, connection.scopes)
                walk = PageWalk()
                ids = [video.id for video in extract_videos(client, connection.scopes, walk)]
                for _batch in refresh_metrics(client, ids):
                    pass
                stats = client.stats
                results.put((name, "ok", sum(stats.requests.values()), stats.rate_limited))
        except Exception as err:  # reported to the parent, which asserts on it
            results.put((name, f"{type(err).__name__}: {err}", 0, 0))
    resource.budget().close()


def hold_refresh_lock(state_url: str, name: str, held: Any, release: Any) -> None:
    """Hold `name`'s refresh lock until told to let go."""
    from resources.connections.refresh_lock import refresh_lock
    from resources.database import make_engine

    with refresh_lock(make_engine(state_url), name):
        held.set()
        release.wait(30)

"""TikTokResource's shared parts: one budget and one OAuth pool per process whichever thread asks,
and the patience.

Round trip: `TikTokResource` -> environment variables (as a deployed worker reads them) ->
`RequestBudget` / the client's rate-limit patience.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from resources.configurable import TikTokResource
from resources.ratelimit.budget import BudgetConfigError
from resources.tiktok.apps import DEMO_APP
from resources.tiktok.client import RATE_LIMIT_PATIENCE_S


def test_threads_of_one_process_share_one_budget(tmp_path):
    os.environ["TIKTOK_RATE_LIMIT_URL"] = f"sqlite:///{tmp_path / 'budget.db'}"
    resource = TikTokResource()
    with ThreadPoolExecutor(16) as pool:
        budgets = list(pool.map(lambda _: resource.budget(), range(32)))
    assert len({id(budget) for budget in budgets}) == 1
    budgets[0].close()


def test_threads_of_one_process_share_one_oauth_pool(monkeypatch):
    """A run's sync threads start together: they must not each build an HTTP pool (its TLS
    context) for token refreshes, leaving all but one unclosed."""
    import httpx

    built: list[httpx.Client] = []
    real_client = httpx.Client

    def slow_client(**kwargs: object) -> httpx.Client:
        time.sleep(0.02)  # as long as building a TLS context takes: threads overlap here
        built.append(real_client(**kwargs))
        return built[-1]

    monkeypatch.setattr("resources.configurable.httpx.Client", slow_client)
    resource = TikTokResource()
    with ThreadPoolExecutor(16) as pool:
        clients = list(pool.map(lambda _: resource.oauth(DEMO_APP), range(32)))
    assert len(built) == 1
    assert len({id(client._http) for client in clients}) == 1
    built[0].close()


def test_patience_defaults_to_several_tiktok_windows_and_reads_the_environment():
    assert TikTokResource().patience_s() == RATE_LIMIT_PATIENCE_S >= 60
    os.environ["TIKTOK_RATE_LIMIT_PATIENCE_S"] = "900"
    assert TikTokResource().patience_s() == 900.0
    assert TikTokResource(rate_limit_patience_s=30.0).patience_s() == 30.0  # config wins


@pytest.mark.parametrize("raw", ["soon", "-5"])
def test_a_malformed_patience_names_the_variable(raw):
    os.environ["TIKTOK_RATE_LIMIT_PATIENCE_S"] = raw
    with pytest.raises(BudgetConfigError, match="TIKTOK_RATE_LIMIT_PATIENCE_S"):
        TikTokResource().patience_s()

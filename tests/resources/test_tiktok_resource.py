"""TikTokResource's budget parts: one budget per process whichever thread asks, and the patience.

Round trip: `TikTokResource` -> environment variables (as a deployed worker reads them) ->
`RequestBudget` / the client's rate-limit patience.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from resources.configurable import TikTokResource
from resources.ratelimit.budget import BudgetConfigError
from resources.tiktok.client import RATE_LIMIT_PATIENCE_S


def test_threads_of_one_process_share_one_budget(tmp_path):
    os.environ["TIKTOK_RATE_LIMIT_URL"] = f"sqlite:///{tmp_path / 'budget.db'}"
    resource = TikTokResource()
    with ThreadPoolExecutor(16) as pool:
        budgets = list(pool.map(lambda _: resource.budget(), range(32)))
    assert len({id(budget) for budget in budgets}) == 1
    budgets[0].close()


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

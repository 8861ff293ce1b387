"""The sync summary counts the requests TikTok received, through the real CLI on the simulator.

With the token key unset, no access token can be read, so nothing is sent: the summary must say
0 calls, as the simulator's own request counts do (it said 15 before issue 18). With the key set,
the summary's total equals what the simulator counted.
"""

import os

from click.testing import CliRunner

from pipelines.cli import main
from resources import settings
from resources.connections.crypto import TOKEN_KEYS_VAR
from resources.connections.store import ConnectionStore
from resources.database import make_engine
from tests.pipelines.helpers import connect, use_live_app


def received(simulator) -> int:
    stats = simulator.stats().values()
    return sum(
        value["requests"] for value in stats if isinstance(value, dict) and "requests" in value
    )


def summary_calls(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("TikTok API calls:"))
    return int(line.split(":")[1].split(",")[0])


def registered(simulator) -> None:
    use_live_app(simulator)
    os.environ["TIKTOK_API_BASE_URL"] = simulator.base_url
    os.environ["TIKTOK_AUTH_BASE_URL"] = simulator.base_url
    store = ConnectionStore(make_engine(settings.state_database_url()))
    for index, name in enumerate(["creator-a", "creator-b"]):
        connect(simulator, store, name, account=index)
    simulator.reset_stats()  # registering talked to TikTok; the sync starts from zero


def test_no_token_key_means_no_request_and_the_summary_says_0(simulator, monkeypatch):
    registered(simulator)
    monkeypatch.delenv(TOKEN_KEYS_VAR)
    result = CliRunner().invoke(main, ["sync", "--all"])
    assert result.exit_code == 1, result.output
    assert received(simulator) == 0
    assert summary_calls(result.output) == 0


def test_the_summary_counts_what_tiktok_received(simulator):
    registered(simulator)
    result = CliRunner().invoke(main, ["sync", "--all"])
    assert result.exit_code == 0, result.output
    assert summary_calls(result.output) == received(simulator) > 0

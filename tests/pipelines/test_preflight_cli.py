"""Bad settings through the real CLI: `sync`, `connections list` and `chart` stop before any work.

Each case sets one bad variable (or damages the state database file) in the test's isolated
environment, invokes the command, and reads its whole output: a few lines naming the variable or
the file, the expected form or what to do, no traceback, no password, exit status 1.
"""

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from resources import settings

PASSWORD = "s3cret-Pa55"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_reason(result, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert 1 <= len(lines) <= 3, result.output
    assert "Traceback" not in result.output and PASSWORD not in result.output
    for text in expected:
        assert text in result.output, result.output


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("WAREHOUSE_URL", "not-a-url", "expected postgresql+psycopg://"),
        ("STATE_DATABASE_URL", f"mysql://sync:{PASSWORD}@db/state", "driver (mysql)"),
        ("TIKTOK_RATE_LIMIT_URL", f"memcached://u:{PASSWORD}@cache", "expected sqlite:///PATH"),
        ("SYNC_BATCH_SIZE", "many", "whole number of connections per run"),
        ("BACKFILL_BATCH_SIZE", "40", "is now SYNC_BATCH_SIZE"),
    ],
)
@pytest.mark.parametrize("command", [("sync", "--all"), ("connections", "list")])
def test_a_bad_url_stops_the_command_in_one_line(monkeypatch, variable, value, expected, command):
    monkeypatch.setenv(variable, value)
    # Every setting is checked, whatever the command uses: a broken one is said at once.
    result = invoke(*command)
    assert_one_reason(result, variable, expected)


@pytest.mark.parametrize(
    "command", [("sync", "--all"), ("connections", "list"), ("connections", "disconnect", "x")]
)
def test_a_state_database_that_is_not_sqlite_is_named_with_what_to_do(command):
    path = settings.data_dir() / "state.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04 a zip file copied over the state database")
    assert_one_reason(invoke(*command), str(path), "not a SQLite database", "restore it")


def test_a_damaged_warehouse_stops_the_chart_with_its_file(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.db"
    path.write_text("half a download")
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{path}")
    assert_one_reason(invoke("chart", "--out", str(tmp_path / "f.svg")), str(path), "WAREHOUSE_URL")

"""Settings checked before work: each bad URL or damaged SQLite file is one line, no secret.

Pure checks of `resources.settings` on environment mappings, and `resources.database` on real
files (a text file, a SQLite file with a page overwritten) and a real PostgreSQL refusing a
wrong password. The Dagster resources turn the same lines into a one-sentence step failure.
"""

import sqlite3

import dagster as dg
import pytest

from resources.configurable import StateDatabaseResource, WarehouseResource
from resources.database import database_problem
from resources.settings import setting_problems

PASSWORD = "s3cret-Pa55"


@pytest.mark.parametrize(
    ("environ", "named", "expected"),
    [
        # not a URL at all: its value may be a password pasted in the wrong place, so not shown
        ({"WAREHOUSE_URL": "not-a-url"}, "WAREHOUSE_URL", "is not a database URL"),
        ({"STATE_DATABASE_URL": PASSWORD}, "STATE_DATABASE_URL", "is not a database URL"),
        # a database SQLAlchemy does not know
        (
            {"WAREHOUSE_URL": f"oracle2://u:{PASSWORD}@h/db"},
            "WAREHOUSE_URL",
            "not a database this project can use",
        ),
        # a known database whose driver is not installed (MySQL's default, mysqlclient)
        (
            {"WAREHOUSE_URL": f"mysql://u:{PASSWORD}@h/db"},
            "WAREHOUSE_URL",
            "driver (mysql) is not installed",
        ),
        # a SQLite file in a folder that does not exist
        (
            {"STATE_DATABASE_URL": "sqlite:////nowhere/at/all/state.db"},
            "STATE_DATABASE_URL",
            "/nowhere/at/all does not exist",
        ),
        (
            {"TIKTOK_RATE_LIMIT_URL": f"memcached://u:{PASSWORD}@h"},
            "TIKTOK_RATE_LIMIT_URL",
            "supported store",
        ),
        ({"TIKTOK_RATE_LIMIT_URL": "localhost:6379"}, "TIKTOK_RATE_LIMIT_URL", "supported store"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_variable_and_the_form(environ, named, expected):
    (line,) = setting_problems(environ)
    assert line.startswith(named) and expected in line
    assert "expected " in line or "point" in line  # the form it wants
    assert "\n" not in line and PASSWORD not in line


def test_good_and_default_settings_have_no_problem(tmp_path):
    assert setting_problems({}) == []
    good = {
        "WAREHOUSE_URL": f"postgresql+psycopg://u:{PASSWORD}@h:5432/db",
        "STATE_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "TIKTOK_RATE_LIMIT_URL": "redis://127.0.0.1:6379/0",
    }
    assert setting_problems(good) == []
    # the budget's PostgreSQL store takes libpq's postgres:// too, which SQLAlchemy would refuse
    assert setting_problems({"TIKTOK_RATE_LIMIT_URL": "postgres://u@h/db"}) == []


def damaged(path) -> None:
    """A real SQLite database whose pages after the first were overwritten with garbage."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 6] = b"\xff" * (4096 * 4)
    path.write_bytes(bytes(data))


def test_a_file_that_is_not_sqlite_or_is_damaged_is_named_with_what_to_do(tmp_path):
    text = tmp_path / "state.db"
    text.write_text("these are my notes, not a database\n")
    line = database_problem("STATE_DATABASE_URL", f"sqlite:///{text}")
    assert line is not None and str(text) in line and "is not a SQLite database" in line
    assert "restore it from a backup" in line and "connections connect" in line
    broken = tmp_path / "broken.db"
    damaged(broken)
    line = database_problem("STATE_DATABASE_URL", f"sqlite:///{broken}")
    assert line is not None and str(broken) in line and "is damaged" in line
    assert "\n" not in line
    fresh = tmp_path / "fresh.db"
    assert database_problem("STATE_DATABASE_URL", f"sqlite:///{fresh}") is None  # created later


@pytest.mark.postgres
def test_a_server_that_refuses_us_says_why_without_the_password(postgres_url):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password=PASSWORD, database="no_such_database_18")
    line = database_problem("WAREHOUSE_URL", url.render_as_string(hide_password=False))
    assert line is not None and line.startswith("WAREHOUSE_URL=") and "cannot connect" in line
    assert "no_such_database_18" in line  # the server's reason
    assert PASSWORD not in line and "***" in line
    assert database_problem("WAREHOUSE_URL", postgres_url) is None


def test_the_dagster_resources_fail_the_step_in_one_sentence(tmp_path):
    with pytest.raises(dg.Failure) as failed:
        WarehouseResource(url="not-a-url").warehouse()
    assert failed.value.description.startswith("WAREHOUSE_URL is not a database URL")
    assert failed.value.__cause__ is None  # no SQLAlchemy traceback behind it
    text = tmp_path / "state.db"
    text.write_text("not a database")
    with pytest.raises(dg.Failure, match="is not a SQLite database"):
        StateDatabaseResource(url=f"sqlite:///{text}").store()

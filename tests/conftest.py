"""Shared fixtures: isolated state and warehouse databases, the simulator, and PostgreSQL.

PostgreSQL tests use TEST_POSTGRES_URL (default: the local server, user postgres, database test),
each session in a schema of its own that is dropped afterwards. Where the server is unreachable
they skip with the reason, except under CI=true, where an unreachable server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from dagster._core.storage.defs_state.base import set_defs_state_storage

from resources.database import make_engine
from resources.warehouse.store import Warehouse
from simulators.tiktok import SimulatorConfig, TikTokSimulator

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's settings or credentials, and none leaks its own.

    The whole environment is restored afterwards because the demo code sets variables for the
    runs it starts (mode, simulator URL, DAGSTER_HOME).
    """
    saved = dict(os.environ)
    # Set by .ci/run: every test encrypts with this canary key, and afterwards nothing the suite
    # wrote or printed may contain it (tests/secrets/scan.py). Not TIKTOK_*: that is cleared below.
    canary_key = os.environ.get("SECRETS_CANARY_TOKEN_KEY")
    for name in list(os.environ):
        if name.startswith("TIKTOK_") or name in ("WAREHOUSE_URL", "STATE_DATABASE_URL"):
            del os.environ[name]
    os.environ["TIKTOK_CRM_SYNC_HOME"] = str(tmp_path / "data")
    os.environ["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    # A fresh token key per test: stores built from the environment encrypt without setup.
    os.environ["TIKTOK_CRM_SYNC_TOKEN_KEYS"] = canary_key or Fernet.generate_key().decode()
    (tmp_path / "dagster_home").mkdir()
    # Dagster instances publish their defs-state storage in a context variable while entered. Each
    # test gets its own value, restored afterwards. (A schedule or sensor context opens an instance
    # of its own and closes it, resetting the variable, only on exit: tests use them in `with`,
    # or the garbage collector closes them in a later test, which then loads definitions against a
    # dropped instance: tests/test_hygiene.py.)
    try:
        with set_defs_state_storage(None):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def simulator() -> Iterator[TikTokSimulator]:
    sim = TikTokSimulator(SimulatorConfig(seed=7, accounts=4, videos_per_account=45))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[sa.Engine]:
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    admin = sa.create_engine(url)
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as err:
        reason = f"PostgreSQL at {url} is unreachable ({type(err.orig).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true PostgreSQL tests must run")
        pytest.skip(reason)
    yield admin
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: sa.Engine) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_server.begin() as db:
        db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_server.url.render_as_string(hide_password=False)
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with postgres_server.begin() as db:
            db.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """The same warehouse test on real SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wh.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    wh = Warehouse(make_engine(url))
    yield wh
    wh.engine.dispose()

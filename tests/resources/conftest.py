"""Fixtures shared by the resource tests."""

from collections.abc import Iterator

import pytest

from resources.database import make_engine
from resources.warehouse import Warehouse


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path) -> Iterator[Warehouse]:
    """The same warehouse tests on real SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wh.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    wh = Warehouse(make_engine(url))
    yield wh
    wh.engine.dispose()

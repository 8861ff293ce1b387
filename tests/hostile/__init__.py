"""Hostile input (issue 7): property-based and adversarial tests of everything that reads input
the project does not control: mapping files, extracted records, TikTok responses, table names.

Shared here: the hypothesis settings (derandomized under CI=true, so a CI failure reproduces
locally with CI=true) and strategies for hostile JSON-like values.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from resources.warehouse.store import Warehouse

IN_CI = os.environ.get("CI") == "true"


# HOSTILE_EXAMPLES_FACTOR=20 multiplies every example count, for a deeper local fuzzing session.
EXAMPLES_FACTOR = int(os.environ.get("HOSTILE_EXAMPLES_FACTOR", "1"))


def hostile_settings(max_examples: int) -> settings:
    """Bounded example counts (the whole folder stays well under a minute) and no deadline:
    the machine is shared, so a slow example is load, not a bug."""
    return settings(
        max_examples=max_examples * EXAMPLES_FACTOR,
        deadline=None,
        derandomize=IN_CI,
        database=None if IN_CI else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# One megabyte of text per value is enough to find quadratic or copying behaviour; the 10 MB
# cases are explicit tests in test_huge_values.py, not hypothesis examples.
HUGE_TEXT = "\u00e9" * 1_000_000
LONE_SURROGATES = ("\ud800", "abc\udfffdef", "\udbff")
SQL_LOOKING = (
    "videos; DROP TABLE x",
    "x'); DROP TABLE crm_contacts; --",
    '" OR 1=1 --',
    "crm_contacts --",
    "a\x00b",
    "Robert'); DELETE FROM tiktok_profiles;--",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(10**4000),
    st.floats(),  # NaN, infinities, -0.0, subnormals
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(LONE_SURROGATES + SQL_LOOKING + ("", " ", "nan", "1e999", "-0", "12")),
    st.just(HUGE_TEXT),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.dates(),
    st.just(datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))),
    st.just(date.min),
)

json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        | st.dictionaries(st.integers(), inner, max_size=2)  # non-string keys
    ),
    max_leaves=8,
)


def deeply_nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def snapshot(wh: Warehouse) -> dict[str, Any]:
    """Every table of the warehouse's schema with its columns and all of its rows."""
    inspector = sa.inspect(wh.engine)
    state: dict[str, Any] = {}
    with wh.engine.connect() as db:
        for name in sorted(inspector.get_table_names()):
            table = sa.Table(name, sa.MetaData(), autoload_with=db)
            rows = sorted(repr(tuple(row)) for row in db.execute(sa.select(table)))
            state[name] = ([column.name for column in table.columns], rows)
    return state

"""Casts from extracted values to declared column types: every type, valid and invalid inputs,
and round trips (value -> text -> value) checked with hypothesis."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.casts import cast_value, to_string
from transforms.errors import RecordProblem

VALID = [
    # strings pass through; numbers, booleans and datetimes become text
    ("string", "hello", "hello"),
    ("string", "", ""),
    ("string", 12, "12"),
    ("string", 1.5, "1.5"),
    ("string", True, "true"),
    ("string", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
    ("string", date(2024, 1, 2), "2024-01-02"),
    # a huge string is fine: nothing truncates unless a transform asks
    ("string", "x" * 100_000, "x" * 100_000),
    # integers: ints, integral floats and digit strings with a sign
    ("integer", 7, 7),
    ("integer", "12", 12),
    ("integer", "-3", -3),
    ("integer", "+4", 4),
    ("integer", 5.0, 5),
    ("integer", 10**30, 10**30),
    # floats: numbers and decimal strings
    ("float", 2, 2.0),
    ("float", 0.25, 0.25),
    ("float", "1e3", 1000.0),
    ("float", "-.5", -0.5),
    # booleans: bools and the words true/false in any case
    ("boolean", True, True),
    ("boolean", "false", False),
    ("boolean", "TRUE", True),
    # datetimes: epoch seconds (number or text), ISO-8601 with or without offset, datetime, date
    ("datetime", 1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("datetime", "1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("datetime", 0.5, datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ("datetime", "2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
    ("datetime", "2024-03-01T12:00:00+02:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
    ("datetime", "2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
    ("datetime", datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 10, tzinfo=UTC)),
    (
        "datetime",
        datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 3, 1, 10, tzinfo=UTC),
    ),
    ("datetime", date(2024, 3, 1), datetime(2024, 3, 1, tzinfo=UTC)),
    # dates: ISO dates, datetimes (taken in UTC) and epoch seconds
    ("date", "2024-03-01", date(2024, 3, 1)),
    ("date", date(2024, 3, 1), date(2024, 3, 1)),
    ("date", "2024-03-01T23:30:00-02:00", date(2024, 3, 2)),
    ("date", 1700000000, date(2023, 11, 14)),
    # json: objects and lists of JSON values
    ("json", {"a": [1, 2.5, None, "x", True]}, {"a": [1, 2.5, None, "x", True]}),
    ("json", [], []),
]

INVALID = [
    # strings refuse containers and non-finite numbers
    ("string", {"a": 1}),
    ("string", [1]),
    ("string", float("nan")),
    # integers refuse fractions, booleans, non-digit text and other shapes
    ("integer", 1.5),
    ("integer", True),
    ("integer", "abc"),
    ("integer", "12.0"),
    ("integer", " 12"),
    ("integer", "1_000"),
    ("integer", "9" * 5000),
    ("integer", float("inf")),
    ("integer", [1]),
    # floats refuse NaN, infinity (also as text), booleans and words
    ("float", float("nan")),
    ("float", float("inf")),
    ("float", "nan"),
    ("float", "1e999"),
    ("float", False),
    ("float", "twelve"),
    ("float", 10**400),
    # booleans refuse numbers and other words
    ("boolean", 1),
    ("boolean", "yes"),
    ("boolean", "0"),
    # datetimes refuse booleans, garbage, out-of-range epochs and very long text
    ("datetime", True),
    ("datetime", "yesterday"),
    ("datetime", 10**20),
    ("datetime", "1e999"),
    ("datetime", float("nan")),
    ("datetime", "2024-01-01" + "x" * 200),
    ("datetime", {"at": 1}),
    # dates refuse what datetimes refuse
    ("date", "2024-13-01"),
    ("date", False),
    # json refuses scalars, non-string keys, NaN and non-JSON objects
    ("json", "{}"),
    ("json", 3),
    ("json", {1: "a"}),
    ("json", {"a": float("nan")}),
    ("json", {"a": {1, 2}}),
]


@pytest.mark.parametrize(("type_name", "value", "expected"), VALID)
def test_valid_values_cast(type_name: str, value: object, expected: object) -> None:
    result = cast_value(value, type_name)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(("type_name", "value"), INVALID)
def test_invalid_values_are_refused_with_the_type(type_name: str, value: object) -> None:
    with pytest.raises(RecordProblem) as caught:
        cast_value(value, type_name)
    message = str(caught.value)
    assert type(value).__name__ in message
    assert len(message) < 300


@pytest.mark.parametrize("type_name", ["string", "integer", "float", "boolean", "datetime", "date"])
def test_null_stays_null(type_name: str) -> None:
    assert cast_value(None, type_name) is None


def test_datetimes_are_utc_aware() -> None:
    result = cast_value("2024-03-01T10:00:00", "datetime")
    assert result.tzinfo is UTC


def test_json_output_does_not_alias_the_input() -> None:
    source = {"tags": ["a"]}
    result = cast_value(source, "json")
    source["tags"].append("b")
    assert result == {"tags": ["a"]}


def test_long_values_are_not_echoed_in_full() -> None:
    with pytest.raises(RecordProblem) as caught:
        cast_value("z" * 10_000, "integer")
    assert "length 10000" in str(caught.value)
    assert "z" * 81 not in str(caught.value)


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_integer_round_trips_through_text(number: int) -> None:
    assert cast_value(to_string(number), "integer") == number
    assert cast_value(number, "integer") == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trips_through_text(number: float) -> None:
    result = cast_value(to_string(number), "float")
    assert result == number and math.copysign(1, result) == math.copysign(1, number)


@given(st.booleans())
def test_boolean_round_trips_through_text(flag: bool) -> None:
    assert cast_value(to_string(flag), "boolean") is flag


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_datetime_round_trips_through_iso_text(moment: datetime) -> None:
    assert cast_value(to_string(moment), "datetime") == moment


@given(st.integers(min_value=-(10**10), max_value=10**11))
def test_epoch_seconds_round_trip(seconds: int) -> None:
    moment = cast_value(seconds, "datetime")
    assert (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() == seconds
    assert cast_value(str(seconds), "datetime") == moment


@given(st.dates())
def test_date_round_trips_through_iso_text(day: date) -> None:
    assert cast_value(to_string(day), "date") == day


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(JSON, max_size=4) | st.dictionaries(st.text(), JSON, max_size=4))
def test_json_round_trips(value: object) -> None:
    assert cast_value(value, "json") == value

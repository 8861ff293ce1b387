"""Strict, explicit casts from extracted values to the mapping's declared column types."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from transforms.errors import RecordProblem, describe_value

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ISO-8601 values are short; refusing long strings early keeps a bad record cheap to reject.
_MAX_ISO_LENGTH = 64
# JSON values nest a few levels in practice; the cap keeps the copy away from recursion limits.
_MAX_JSON_DEPTH = 64


def _refuse(value: object, type_name: str, why: str = "") -> RecordProblem:
    return RecordProblem(f"cannot cast {describe_value(value)} to {type_name}{why}")


def to_string(value: Any) -> str:
    """str as is; numbers, booleans ("true"/"false") and datetimes (ISO-8601) as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError as err:  # more digits than int->str allows
            raise _refuse(value, "string", ": the number is too long") from err
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse(value, "string", ": the number is not finite")
        return repr(value)
    if isinstance(value, datetime):
        return to_datetime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise _refuse(value, "string")


def to_integer(value: Any) -> int:
    """int (not bool), integral float, or a string of digits with an optional sign."""
    if isinstance(value, bool):
        raise _refuse(value, "integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise _refuse(value, "integer", ": it has a fraction or is not finite")
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        try:
            return int(value)
        except ValueError as err:
            raise _refuse(value, "integer", ": too many digits") from err
    raise _refuse(value, "integer")


def to_float(value: Any) -> float:
    """int (not bool), finite float, or a decimal string; NaN and infinity are refused."""
    if isinstance(value, bool):
        raise _refuse(value, "float")
    result: float | None = None
    try:
        numeric_text = isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value)
        if isinstance(value, int | float) or numeric_text:
            result = float(value)
    except (OverflowError, ValueError) as err:
        raise _refuse(value, "float", ": out of range") from err
    if result is None:
        raise _refuse(value, "float")
    if not math.isfinite(result):
        raise _refuse(value, "float", ": the number is not finite")
    return result


def to_boolean(value: Any) -> bool:
    """bool, or the strings "true"/"false" in any letter case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _refuse(value, "boolean")


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes come from our own pipeline clock, which is UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as err:
        raise _refuse(value, "datetime", ": out of range") from err


def _from_epoch(value: Any, seconds: float) -> datetime:
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError) as err:
        raise _refuse(value, "datetime", ": epoch seconds out of range") from err


def to_datetime(value: Any) -> datetime:
    """datetime, date (midnight), epoch seconds (number or numeric text) or ISO-8601; UTC-aware."""
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        raise _refuse(value, "datetime")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise _refuse(value, "datetime", ": the number is not finite")
        return _from_epoch(value, value)
    if isinstance(value, str):
        if _DECIMAL_TEXT.fullmatch(value):
            return _from_epoch(
                value, to_integer(value) if _INTEGER_TEXT.fullmatch(value) else float(value)
            )
        if len(value) <= _MAX_ISO_LENGTH:
            try:
                return _as_utc(datetime.fromisoformat(value))
            except ValueError:
                pass
        raise _refuse(value, "datetime", ": expected epoch seconds or ISO-8601")
    raise _refuse(value, "datetime")


def to_date(value: Any) -> date:
    """date, or anything to_datetime accepts, taken as a calendar day in UTC."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return to_datetime(value).date()
    except RecordProblem:
        raise _refuse(value, "date") from None


def _copy_json(value: Any, depth: int) -> Any:
    if depth > _MAX_JSON_DEPTH:
        raise RecordProblem(f"nested deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordProblem(f"object key {describe_value(key)} is not a string")
            copied[key] = _copy_json(item, depth + 1)
        return copied
    if isinstance(value, list):
        return [_copy_json(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordProblem(f"{describe_value(value)} is not finite")
    if value is None or isinstance(value, str | int | float):
        return value
    raise RecordProblem(f"{describe_value(value)} is not a JSON value")


def to_json(value: Any) -> dict[str, Any] | list[Any]:
    """dict or list of JSON values (str keys, finite numbers), copied so outputs never alias."""
    if not isinstance(value, dict | list):
        raise _refuse(value, "json", ": expected an object or a list")
    try:
        copied: dict[str, Any] | list[Any] = _copy_json(value, 0)
    except RecordProblem as err:
        raise _refuse(value, "json", f": {err}") from None
    return copied


CASTS: dict[str, Callable[[Any], Any]] = {
    "boolean": to_boolean,
    "date": to_date,
    "datetime": to_datetime,
    "float": to_float,
    "integer": to_integer,
    "json": to_json,
    "string": to_string,
}


def cast_value(value: Any, type_name: str) -> Any:
    """Cast one value to a declared type; None stays None; raises RecordProblem with the reason."""
    if value is None:
        return None
    return CASTS[type_name](value)

"""Apply a compiled mapping to extracted records: read, transform, cast, compute; never raise."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from transforms.casts import cast_value
from transforms.errors import RecordProblem, describe_value
from transforms.expressions import evaluate
from transforms.mapping import ComputedField, MappedField, Mapping

_OK, _EMPTY, _SKIP, _REJECT = "ok", "null", "skip", "reject"


@dataclass(frozen=True)
class RejectedRecord:
    """A source record that was not emitted, and why (the dead-letter row of class "validation")."""

    key: tuple[Any, ...] | None
    reason: str
    field: str | None
    record: dict[str, Any]
    error_class: str = "validation"


@dataclass(frozen=True)
class MappingResult:
    """Mapped records, rejected records, and the target fields left empty for want of a scope."""

    records: list[dict[str, Any]]
    rejected: list[RejectedRecord]
    # scope -> target fields emptied (when_scope_missing: null) or skipped: scope not granted
    missing_scopes: dict[str, tuple[str, ...]]


class _Rejected(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.key: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class _Plan:
    """What to do with each target for the granted scopes: ok, null, skip or reject (+ why)."""

    status: dict[str, str]
    why: dict[str, str]
    missing_scopes: dict[str, tuple[str, ...]]


def _plan(mapping: Mapping, granted: frozenset[str]) -> _Plan:
    status: dict[str, str] = {}
    why: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    entries: list[MappedField | ComputedField] = [*mapping.fields, *mapping.computed]
    for entry in entries:
        absent = sorted(entry.scopes - granted)
        if not absent:
            status[entry.target] = _OK
            continue
        required = isinstance(entry, MappedField) and entry.required
        policy = _REJECT if required else entry.when_scope_missing
        status[entry.target] = policy
        scopes = ", ".join(repr(scope) for scope in absent)
        rule = "the field is required" if required else "when_scope_missing is reject"
        why[entry.target] = f"{entry.target}: scope {scopes} was not granted and {rule}"
        if policy != _REJECT:
            for scope in absent:
                missing.setdefault(scope, []).append(entry.target)
    return _Plan(status, why, {scope: tuple(targets) for scope, targets in missing.items()})


def _read(record: dict[Any, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for depth, part in enumerate(path):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise RecordProblem(
                f"cannot read {'.'.join(path)}: {'.'.join(path[:depth])} is "
                f"{describe_value(value)}, not an object"
            )
        value = value.get(part)
    return value


class _RecordMapper:
    def __init__(self, mapping: Mapping, plan: _Plan, previous: dict[tuple[Any, ...], Any]) -> None:
        self.mapping = mapping
        self.plan = plan
        self.previous = previous
        # Key fields first, so a record rejected later still reports which key it had.
        self.key_fields = [f for name in mapping.key for f in mapping.fields if f.target == name]
        self.other_fields = [f for f in mapping.fields if f.target not in mapping.key]

    def field_value(self, field: MappedField, record: dict[Any, Any]) -> Any:
        status = self.plan.status[field.target]
        if status == _REJECT:
            raise _Rejected(field.target, self.plan.why[field.target])
        if status == _EMPTY:
            return None
        try:
            value = _read(record, field.source_path)
            for step in field.transforms:
                value = step.apply(value, record)
            value = cast_value(value, field.type)
        except RecordProblem as err:
            raise _Rejected(
                field.target, f"{field.target}: {err} (source field {field.source!r})"
            ) from None
        if value is None and field.required:
            raise _Rejected(
                field.target,
                f"{field.target}: required, but source field {field.source!r} is missing or null",
            )
        return value

    def computed_value(
        self, entry: ComputedField, record: dict[Any, Any], key: tuple[Any, ...]
    ) -> Any:
        status = self.plan.status[entry.target]
        if status == _REJECT:
            raise _Rejected(entry.target, self.plan.why[entry.target])
        if status == _EMPTY:
            return None
        snapshot = self.previous.get(key)
        try:
            result = evaluate(
                entry.expression, record, snapshot if isinstance(snapshot, dict) else None
            )
            return cast_value(result, entry.type)
        except RecordProblem as err:
            raise _Rejected(
                entry.target, f"{entry.target}: {err} (expression {entry.expression.text!r})"
            ) from None

    def map(self, record: dict[Any, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # Key fields are required, so never skipped: they are always in ``values``.
        values = {field.target: self.field_value(field, record) for field in self.key_fields}
        key = tuple(values[name] for name in self.mapping.key)
        try:
            for field in self.other_fields:
                if self.plan.status[field.target] != _SKIP:
                    values[field.target] = self.field_value(field, record)
            for entry in self.mapping.computed:
                if self.plan.status[entry.target] != _SKIP:
                    values[entry.target] = self.computed_value(entry, record, key)
        except _Rejected as rejected:
            rejected.key = key
            raise
        return key, {name: values[name] for name, _type in self.mapping.columns if name in values}


def apply_mapping(
    mapping: Mapping,
    records: Iterable[dict[str, Any]],
    granted_scopes: frozenset[str],
    previous: dict[tuple[Any, ...], dict[str, Any]] | None = None,
) -> MappingResult:
    """Map every record; a record that cannot be mapped is rejected whole, the others go on.

    ``previous`` holds the previous snapshot's source record per key tuple, for previous.<field>.
    """
    plan = _plan(mapping, frozenset(granted_scopes))
    mapper = _RecordMapper(mapping, plan, previous or {})
    emitted: list[dict[str, Any]] = []
    rejected: list[RejectedRecord] = []
    first_seen: dict[tuple[Any, ...], int] = {}
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            reason = f"record #{position} is {describe_value(record)}, expected a mapping"
            rejected.append(RejectedRecord(None, reason, None, {"value": record}))
            continue
        try:
            key, values = mapper.map(record)
        except _Rejected as err:
            rejected.append(RejectedRecord(err.key, err.reason, err.field, record))
            continue
        if key in first_seen:
            # Two rows with one key in a batch break an upsert; keep the first, report the rest.
            shown = ", ".join(describe_value(part) for part in key)
            reason = (
                f"duplicate key ({shown}): record #{position} repeats record "
                f"#{first_seen[key]} of this batch, which was kept"
            )
            rejected.append(RejectedRecord(key, reason, None, record))
            continue
        first_seen[key] = position
        emitted.append(values)
    return MappingResult(emitted, rejected, plan.missing_scopes)

"""Pydantic models of the mapping file's shape, and their errors turned into document paths."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from resources.crm.models import ON_DELETE_MODES
from transforms.errors import DocPath, describe_value
from transforms.field_transforms import suggest
from transforms.source_fields import (
    FIELD_TYPES,
    SCOPE_POLICIES,
    SOURCE_FIELD_SCOPES,
    target_kinds,
)

SUPPORTED_VERSION = 1


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(
            f"unknown {what} {value!r}{suggest(value, choices)} "
            f"(expected one of: {', '.join(choices)})"
        )
    return value


class _Strict(BaseModel):
    # strict: YAML's `required: "yes"` or `truncate: "255"` is a mistake to report, not to coerce.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TargetSpec(_Strict):
    kind: str
    object: str

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return _choice(value, target_kinds(), "target kind")


class FieldSpec(_Strict):
    source: str
    target: str
    type: str
    required: bool = False
    transforms: list[Any] = Field(default_factory=list)
    scope: str | None = None
    # YAML reads an unquoted `null` as None: that is the default policy, so accept it.
    when_scope_missing: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _choice(value, FIELD_TYPES, "type")

    @field_validator("when_scope_missing")
    @classmethod
    def _known_policy(cls, value: str | None) -> str | None:
        return None if value is None else _choice(value, SCOPE_POLICIES, "when_scope_missing value")


class ComputedSpec(_Strict):
    target: str
    type: str
    expression: str
    when_scope_missing: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _choice(value, FIELD_TYPES, "type")

    @field_validator("when_scope_missing")
    @classmethod
    def _known_policy(cls, value: str | None) -> str | None:
        return None if value is None else _choice(value, SCOPE_POLICIES, "when_scope_missing value")


class MappingSpec(_Strict):
    version: int
    name: str
    description: str | None = None
    source: str
    target: TargetSpec
    key: list[str] = Field(min_length=1)
    fields: list[FieldSpec] = Field(min_length=1)
    computed: list[ComputedSpec] = Field(default_factory=list)
    # What a CRM push does with deleted source records (docs/mappings.md, "on_delete").
    on_delete: str = "keep"

    @field_validator("on_delete")
    @classmethod
    def _known_on_delete(cls, value: str) -> str:
        return _choice(value, ON_DELETE_MODES, "on_delete value")

    @field_validator("version")
    @classmethod
    def _supported_version(cls, value: int) -> int:
        if value != SUPPORTED_VERSION:
            raise ValueError(
                f"unsupported version {value}; this engine reads version {SUPPORTED_VERSION}"
            )
        return value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return _choice(value, tuple(sorted(SOURCE_FIELD_SCOPES)), "source")


def _model_at(parent: tuple[Any, ...]) -> type[BaseModel] | None:
    if parent == ():
        return MappingSpec
    if parent == ("target",):
        return TargetSpec
    if len(parent) == 2 and parent[0] == "fields":
        return FieldSpec
    if len(parent) == 2 and parent[0] == "computed":
        return ComputedSpec
    return None


_EXPECTED = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "model_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
}


def _describe_error(error: Any) -> str:
    loc: tuple[Any, ...] = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        return (
            f"unknown key {loc[-1]!r}{suggest(str(loc[-1]), allowed)}; "
            f"allowed keys: {', '.join(allowed)}"
        )
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing; add it (see docs/mappings.md)"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "invalid_key":
        return f"keys must be text, got {describe_value(loc[-1])}; quote the key"
    if kind == "too_short":
        return "must not be empty; list at least one entry"
    expected = _EXPECTED.get(kind, error["msg"])
    return f"{expected}, got {describe_value(error['input'])}"


def validation_problems(err: ValidationError) -> list[tuple[DocPath, str]]:
    """Each pydantic error as (document path, message a user can act on), likely causes first.

    A typo (``feilds:``) yields an unknown key *and* a missing key: the unknown key is the one
    to fix, so it comes first; missing keys come last.
    """
    rank = {"extra_forbidden": 0, "missing": 2}
    errors = sorted(err.errors(include_url=False), key=lambda error: rank.get(error["type"], 1))
    return [(_doc_path(error), _describe_error(error)) for error in errors]


def _doc_path(error: Any) -> DocPath:
    loc = tuple(error["loc"])
    # A non-text key (``1:`` or ``true:``) sits in the document under its text form.
    if error["type"] == "invalid_key" and loc:
        return (*loc[:-1], str(loc[-1]))
    return loc

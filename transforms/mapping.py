"""The compiled, immutable form of a mapping file that ``apply_mapping`` runs."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.expressions import Expression
from transforms.field_transforms import Transform


@dataclass(frozen=True)
class Target:
    """Where mapped records go: ``kind`` (warehouse, hubspot, salesforce, generic) and object."""

    kind: str
    object: str


@dataclass(frozen=True)
class MappedField:
    """One ``fields`` entry: read ``source`` (a dotted path), transform, cast to ``type``."""

    target: str
    type: str
    source: str
    required: bool
    transforms: tuple[Transform, ...]
    # Every scope here must be granted, else when_scope_missing applies (empty: always available).
    scopes: frozenset[str]
    when_scope_missing: str

    @property
    def source_path(self) -> tuple[str, ...]:
        """The dotted source split into keys."""
        return tuple(self.source.split("."))


@dataclass(frozen=True)
class ComputedField:
    """One ``computed`` entry: an arithmetic expression over the source record and ``previous``."""

    target: str
    type: str
    expression: Expression
    scopes: frozenset[str]
    when_scope_missing: str


@dataclass(frozen=True)
class Mapping:
    """A validated mapping: which source feeds which target, keyed how, through which fields."""

    version: int
    name: str
    source: str
    target: Target
    key: tuple[str, ...]
    fields: tuple[MappedField, ...]
    computed: tuple[ComputedField, ...]
    # (target name, type) of every mapped and computed field, in the order they appear in the file.
    columns: tuple[tuple[str, str], ...]
    filename: str = "<string>"
    description: str | None = None
    # What a CRM push does with deleted source records: keep, flag or archive (docs/crm.md).
    on_delete: str = "keep"

"""Load a mapping file: safe YAML, shape checks (pydantic), then cross-field checks with lines."""

from __future__ import annotations

import os
import re

from pydantic import ValidationError

from resources.crm.models import DELETED_SOURCE, FLAG
from resources.crm.presets import NameRule, preset
from transforms.errors import DocPath, MappingError, SpecProblem, format_path
from transforms.expressions import ExpressionProblem, compile_expression
from transforms.field_transforms import compile_transform, suggest
from transforms.mapping import ComputedField, MappedField, Mapping, Target
from transforms.source_fields import KNOWN_SCOPES, SOURCE_FIELD_SCOPES, WAREHOUSE
from transforms.spec import MappingSpec, validation_problems
from transforms.yaml_source import MAX_FILE_BYTES, YamlDocument, read_yaml

_MAX_NAME_LENGTH = 63  # PostgreSQL's identifier limit, the tightest of our targets
_MAPPING_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Warehouse columns stay lowercase so the loader never has to quote them; a CRM target's names
# follow its preset (resources.crm.presets).
_WAREHOUSE_NAMES = NameRule(re.compile(r"[a-z_][a-z0-9_]*"), "lowercase letters, digits and _")
_WAREHOUSE_OBJECTS = NameRule(
    re.compile(r"(?:[a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*"), "a lowercase table name"
)
_MAX_PROBLEMS_SHOWN = 10
_MAX_SHOWN = 80


def _shown(value: str) -> str:
    """A name as the message shows it: quoted, and cut short (a hostile file may hold 1 MiB)."""
    return repr(value) if len(value) <= _MAX_SHOWN else f"{value[:_MAX_SHOWN]!r}..."


def _check_name(value: str, path: DocPath, names: NameRule) -> None:
    if not names.allows(value) or len(value) > _MAX_NAME_LENGTH:
        raise SpecProblem(
            path,
            f"{_shown(value)} is not a valid name here: use {names.rule}, "
            f"at most {_MAX_NAME_LENGTH} characters",
        )


def _field_names(kind: str) -> NameRule:
    return _WAREHOUSE_NAMES if kind == WAREHOUSE else preset(kind).field_names


def _object_names(kind: str) -> NameRule:
    return _WAREHOUSE_OBJECTS if kind == WAREHOUSE else preset(kind).object_names


class _Compiler:
    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.source_fields = SOURCE_FIELD_SCOPES[spec.source]
        self.targets: dict[str, DocPath] = {}

    def target_name(self, name: str, path: DocPath) -> None:
        _check_name(name, path, _field_names(self.spec.target.kind))
        if name in self.targets:
            raise SpecProblem(
                path,
                f"duplicate target {name!r} (also used by "
                f"{format_path(self.targets[name])}); each target name may appear once",
            )
        self.targets[name] = path

    def check_type(self, type_name: str, path: DocPath) -> None:
        # A strings-only target (HubSpot's batch API) takes every value as text: cast by the
        # mapping, not by the client.
        kind = self.spec.target.kind
        if kind != WAREHOUSE and preset(kind).strings_only and type_name != "string":
            raise SpecProblem(
                path,
                f"{preset(kind).label} property values are strings: use type: string instead of "
                f"{type_name} (numbers, booleans and datetimes are converted to text)",
            )

    def scopes_of(self, names: frozenset[str] | set[str]) -> frozenset[str]:
        return frozenset(s for name in names if (s := self.source_fields.get(name)) is not None)

    def mapped(self, index: int) -> MappedField:
        field = self.spec.fields[index]
        path: DocPath = ("fields", index)
        self.target_name(field.target, (*path, "target"))
        self.check_type(field.type, (*path, "type"))
        head = field.source.split(".")[0]
        if head not in self.source_fields or "" in field.source.split("."):
            raise SpecProblem(
                (*path, "source"),
                f"unknown {self.spec.source} field {field.source!r}"
                f"{suggest(head, list(self.source_fields))}; known fields: "
                f"{', '.join(self.source_fields)}",
            )
        steps = tuple(
            compile_transform(raw, (*path, "transforms", position), self.source_fields)
            for position, raw in enumerate(field.transforms)
        )
        if field.scope is not None:
            if field.scope not in KNOWN_SCOPES:
                raise SpecProblem(
                    (*path, "scope"),
                    f"unknown scope {field.scope!r}"
                    f"{suggest(field.scope, KNOWN_SCOPES)} (expected one of: "
                    f"{', '.join(sorted(KNOWN_SCOPES))})",
                )
            scopes = frozenset({field.scope})
        else:
            scopes = self.scopes_of({head, *(name for step in steps for name in step.placeholders)})
        policy = field.when_scope_missing or "null"
        if field.required and policy == "skip":
            raise SpecProblem(
                (*path, "when_scope_missing"),
                "a required field cannot be skipped; "
                "use reject (or null, which rejects a required field too)",
            )
        return MappedField(
            field.target, field.type, field.source, field.required, steps, scopes, policy
        )

    def computed(self, index: int) -> ComputedField:
        entry = self.spec.computed[index]
        path: DocPath = ("computed", index)
        self.target_name(entry.target, (*path, "target"))
        self.check_type(entry.type, (*path, "type"))
        try:
            expression = compile_expression(entry.expression, self.source_fields)
        except ExpressionProblem as err:
            raise SpecProblem((*path, "expression"), str(err)) from None
        scopes = self.scopes_of(expression.names | expression.previous_names)
        return ComputedField(
            entry.target, entry.type, expression, scopes, entry.when_scope_missing or "null"
        )

    def key(self, fields: tuple[MappedField, ...]) -> tuple[str, ...]:
        by_target = {field.target: field for field in fields}
        for position, name in enumerate(self.spec.key):
            path: DocPath = ("key", position)
            if name in self.spec.key[:position]:
                raise SpecProblem(path, f"key field {name!r} is listed twice")
            field = by_target.get(name)
            if field is None:
                raise SpecProblem(
                    path,
                    f"key field {name!r} is not the target of any entry in "
                    f"fields{suggest(name, list(by_target))}; key fields must be mapped",
                )
            if not field.required:
                raise SpecProblem(path, f"key field {name!r} must be marked required: true")
            if field.type == "json":
                raise SpecProblem(path, f"key field {name!r} cannot have type json")
        return tuple(self.spec.key)


def _compile(spec: MappingSpec, document: YamlDocument, filename: str) -> Mapping:
    target = spec.target
    objects = _object_names(target.kind)
    if not objects.allows(target.object) or len(target.object) > 255:
        raise SpecProblem(("target", "object"), f"{_shown(target.object)} is not {objects.rule}")
    # A warehouse table (and its schema) is a PostgreSQL identifier: longer names would be cut
    # to 63 characters, so two tables could silently become one; the loader refuses them too.
    if target.kind == WAREHOUSE and any(
        len(part) > _MAX_NAME_LENGTH for part in target.object.split(".")
    ):
        raise SpecProblem(
            ("target", "object"),
            f"{_shown(target.object)} is not {objects.rule}: table and schema names have at most "
            f"{_MAX_NAME_LENGTH} characters",
        )
    if not _MAPPING_NAME.fullmatch(spec.name) or len(spec.name) > _MAX_NAME_LENGTH:
        raise SpecProblem(
            ("name",),
            f"name {_shown(spec.name)} must match [a-z][a-z0-9_]* "
            f"(at most {_MAX_NAME_LENGTH} characters), e.g. hubspot_contacts",
        )
    compiler = _Compiler(spec)
    fields = tuple(compiler.mapped(index) for index in range(len(spec.fields)))
    computed = tuple(compiler.computed(index) for index in range(len(spec.computed)))
    key = compiler.key(fields)
    _check_on_delete(spec, fields)
    placed = [(document.line_of(("fields", i)), f.target, f.type) for i, f in enumerate(fields)]
    placed += [
        (document.line_of(("computed", i)), c.target, c.type) for i, c in enumerate(computed)
    ]
    columns = tuple(
        (name, type_name) for _line, name, type_name in sorted(placed, key=lambda p: p[0])
    )
    return Mapping(
        spec.version,
        spec.name,
        spec.source,
        Target(target.kind, target.object),
        key,
        fields,
        computed,
        columns,
        filename,
        spec.description,
        spec.on_delete,
    )


def _check_on_delete(spec: MappingSpec, fields: tuple[MappedField, ...]) -> None:
    kind, mode = spec.target.kind, spec.on_delete
    if mode == "keep":
        return
    if kind == WAREHOUSE:
        raise SpecProblem(
            ("on_delete",),
            "on_delete applies to CRM targets; a warehouse table keeps deleted rows with "
            "deleted_at set, so use keep (or leave it out)",
        )
    if mode == "archive" and not preset(kind).can_archive:
        raise SpecProblem(
            ("on_delete",),
            f"{preset(kind).label} has no archive call; use flag (map deleted_at) or keep",
        )
    if mode == FLAG and not any(f.source == DELETED_SOURCE for f in fields):
        raise SpecProblem(
            ("on_delete",),
            "on_delete: flag marks deleted records through the field mapped from deleted_at; "
            "add a field with source: deleted_at (video mappings have it), or use archive or keep",
        )


def _error(filename: str, document: YamlDocument | None, problem: SpecProblem) -> MappingError:
    line = problem.line or (document.line_of(problem.path) if document else 1)
    return MappingError(filename, line, problem.path, problem.problem)


def parse_mapping(text: str, filename: str = "<string>") -> Mapping:
    """Parse mapping YAML text; raises MappingError naming ``filename``, the line and the field."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        # Only text that did not come from a file can hold half a surrogate pair ("\ud800").
        raise MappingError(
            filename,
            text[: err.start].count("\n") + 1,
            (),
            "the text is not valid Unicode (a lone surrogate); save it as UTF-8",
        ) from None
    if size > MAX_FILE_BYTES:
        raise MappingError(
            filename,
            1,
            (),
            f"the file is {size} bytes, over the {MAX_FILE_BYTES}-byte "
            "limit; a mapping is a short hand-written file, split it",
        )
    try:
        document = read_yaml(text)
    except SpecProblem as problem:
        raise _error(filename, None, problem) from None
    if document.data is None:
        raise MappingError(
            filename,
            1,
            (),
            "the file is empty; a mapping needs version, name, "
            "source, target, key and fields (see docs/mappings.md)",
        )
    if not isinstance(document.data, dict):
        raise MappingError(
            filename,
            document.line_of(()),
            (),
            "expected a mapping with keys version, "
            f"name, source, target, key and fields, got a {type(document.data).__name__}",
        )
    try:
        spec = MappingSpec.model_validate(document.data)
    except ValidationError as err:
        problems = validation_problems(err)
        lines = [(document.line_of(path), path, message) for path, message in problems]
        first_line, first_path, first_message = lines[0]
        more = "".join(
            f"\n{filename}:{line}: {format_path(path)}: {message}"
            for line, path, message in lines[1:_MAX_PROBLEMS_SHOWN]
        )
        raise MappingError(filename, first_line, first_path, first_message, more) from None
    try:
        return _compile(spec, document, filename)
    except SpecProblem as problem:
        raise _error(filename, document, problem) from None


def load_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Read and parse one mapping file (at most 1 MiB, UTF-8)."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise MappingError(filename, 1, (), f"cannot read the file: {err.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise MappingError(
            filename,
            1,
            (),
            f"the file is over the {MAX_FILE_BYTES}-byte limit; "
            "a mapping is a short hand-written file, split it",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise MappingError(
            filename, line, (), "the file is not valid UTF-8; save it as UTF-8"
        ) from None
    return parse_mapping(text, filename)

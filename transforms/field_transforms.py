"""Per-field transform steps (strip, truncate, template, ...): checked at load, applied later."""

from __future__ import annotations

import copy
import difflib
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from transforms.casts import to_datetime, to_string
from transforms.errors import DocPath, RecordProblem, SpecProblem, describe_value

_PLAIN = ("lowercase", "strip", "uppercase")
_WITH_ARGUMENT = ("date_format", "default", "map", "replace", "template", "truncate")
TRANSFORM_NAMES: tuple[str, ...] = tuple(sorted(_PLAIN + _WITH_ARGUMENT))
_MAX_FORMAT_LENGTH = 200


# Text steps: null passes through, anything but a string rejects the record.
_TEXT_OPERATIONS: dict[str, Callable[[str, Any], str]] = {
    "strip": lambda text, _argument: text.strip(),
    "lowercase": lambda text, _argument: text.lower(),
    "uppercase": lambda text, _argument: text.upper(),
    "truncate": lambda text, limit: text[:limit],
    "replace": lambda text, old_new: text.replace(*old_new),
}


@dataclass(frozen=True)
class Transform:
    """One checked step: its name and normalised argument (plain data, so mappings pickle)."""

    name: str
    argument: Any = None
    # Source fields a template reads: their scopes count as the field's scopes.
    placeholders: tuple[str, ...] = ()

    def apply(self, value: Any, record: Mapping[str, Any]) -> Any:
        """The output for ``value`` (``record`` feeds templates); RecordProblem if unusable."""
        operation = _TEXT_OPERATIONS.get(self.name)
        if operation is not None:
            if value is None:
                return None
            if not isinstance(value, str):
                raise RecordProblem(
                    f"transform {self.name!r} expects a string, got {describe_value(value)}"
                )
            return operation(value, self.argument)
        if self.name == "default":
            return copy.deepcopy(self.argument) if value is None else value
        if self.name == "map":
            text = lookup_key(value)
            # Values missing from the table pass through unchanged, so the cast decides.
            return copy.deepcopy(self.argument[text]) if text in self.argument else value
        if self.name == "date_format":
            return None if value is None else to_datetime(value).strftime(self.argument)
        return self.render_template(record)

    def render_template(self, record: Mapping[str, Any]) -> str | None:
        """Fill the template from the source record; null if any placeholder is missing."""
        values = {name: record.get(name) for name in self.placeholders}
        # A link with a hole in it is worse than no link.
        if any(item is None for item in values.values()):
            return None
        try:
            text: str = self.argument.format_map({k: to_string(v) for k, v in values.items()})
        except RecordProblem as err:
            raise RecordProblem(f"template: {err}") from None
        return text


def suggest(word: str, choices: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def lookup_key(value: Any) -> str | None:
    """The text a ``map`` entry is found by: YAML keys and record values meet as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | date | datetime):
        try:
            return to_string(value)
        except RecordProblem:
            return None
    return None


def _truncate(argument: Any, path: DocPath) -> Transform:
    if isinstance(argument, bool) or not isinstance(argument, int) or argument < 1:
        raise SpecProblem(
            path,
            f"truncate needs a positive whole number of characters, got "
            f"{describe_value(argument)}; write {{truncate: 255}}",
        )
    return Transform("truncate", argument)


def _replace(argument: Any, path: DocPath) -> Transform:
    if not isinstance(argument, dict) or set(argument) != {"old", "new"}:
        raise SpecProblem(
            path,
            "replace needs exactly the keys 'old' and 'new'; "
            'write {replace: {old: "x", new: "y"}}',
        )
    old, new = argument["old"], argument["new"]
    if not isinstance(old, str) or not old or not isinstance(new, str):
        raise SpecProblem(
            path,
            "replace needs a non-empty string 'old' and a string 'new' "
            '(quote values such as "1" or "true")',
        )
    return Transform("replace", (old, new))


def _default(argument: Any, path: DocPath) -> Transform:
    if argument is None:
        raise SpecProblem(path, "default: null changes nothing; give a value or remove the step")
    return Transform("default", argument)


def _map(argument: Any, path: DocPath) -> Transform:
    if not isinstance(argument, dict) or not argument:
        raise SpecProblem(
            path,
            "map needs a non-empty mapping of value -> replacement, e.g. "
            '{map: {"true": "Yes", "false": "No"}}',
        )
    table: dict[str, Any] = {}
    for key, replacement in argument.items():
        text = lookup_key(key)
        if text is None:
            raise SpecProblem(
                (*path, str(key)),
                "map keys must be strings, numbers or booleans; use {default: ...} for null values",
            )
        if text in table:
            raise SpecProblem((*path, str(key)), f"map key {text!r} appears twice")
        table[text] = replacement
    return Transform("map", table)


def _date_format(argument: Any, path: DocPath) -> Transform:
    if not isinstance(argument, str) or not argument or len(argument) > _MAX_FORMAT_LENGTH:
        raise SpecProblem(
            path, 'date_format needs a strftime pattern string, e.g. {date_format: "%Y-%m-%d"}'
        )
    try:
        datetime(2000, 1, 2).strftime(argument)
    except ValueError as err:
        raise SpecProblem(path, f"date_format pattern {argument!r} is invalid: {err}") from None
    return Transform("date_format", argument)


def _template(argument: Any, path: DocPath, source_fields: Mapping[str, str | None]) -> Transform:
    if not isinstance(argument, str):
        raise SpecProblem(
            path, 'template needs a string, e.g. {template: "https://www.tiktok.com/@{username}"}'
        )
    try:
        parts = list(string.Formatter().parse(argument))
    except ValueError as err:
        raise SpecProblem(
            path, f"template is malformed: {err}; write literal braces as {{{{ and }}}}"
        ) from None
    names: list[str] = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier():
            raise SpecProblem(
                path,
                f"template placeholder {{{name}}} must be a plain source field name "
                "(no attribute access, indexing or positional {})",
            )
        if spec or conversion:
            raise SpecProblem(
                path,
                f"template placeholder {{{name}}} may not carry a format spec or "
                "conversion; format the value with another field",
            )
        if name not in source_fields:
            raise SpecProblem(
                path,
                f"template placeholder {{{name}}} is not a source field"
                f"{suggest(name, list(source_fields))}",
            )
        names.append(name)
    return Transform("template", argument, tuple(dict.fromkeys(names)))


def compile_transform(
    raw: Any, path: DocPath, source_fields: Mapping[str, str | None]
) -> Transform:
    """Check one transform entry of a mapping file and return the step that applies it."""
    if isinstance(raw, str):
        if raw in _PLAIN:
            return Transform(raw)
        if raw in _WITH_ARGUMENT:
            raise SpecProblem(path, f"transform {raw!r} needs an argument, e.g. {{{raw}: ...}}")
        raise SpecProblem(
            path,
            f"unknown transform {raw!r}{suggest(raw, TRANSFORM_NAMES)} "
            f"(expected one of: {', '.join(TRANSFORM_NAMES)})",
        )
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SpecProblem(
            path, "a transform is a name (strip) or a mapping with one key ({truncate: 255})"
        )
    ((name, argument),) = raw.items()
    if name in _PLAIN:
        raise SpecProblem(
            path, f"transform {name!r} takes no argument; write it as a plain name: - {name}"
        )
    step_path = (*path, str(name))
    if name == "template":
        return _template(argument, step_path, source_fields)
    builders = {
        "truncate": _truncate,
        "replace": _replace,
        "default": _default,
        "map": _map,
        "date_format": _date_format,
    }
    if name not in builders:
        raise SpecProblem(
            step_path,
            f"unknown transform {name!r}{suggest(str(name), TRANSFORM_NAMES)} "
            f"(expected one of: {', '.join(TRANSFORM_NAMES)})",
        )
    return builders[name](argument, step_path)

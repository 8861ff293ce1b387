"""Safe reading of mapping YAML: plain data plus the line of every key and list item.

The reader walks PyYAML's event stream itself instead of composing a node graph, so it can refuse
anchors and aliases (the "billion laughs" expansion), cap the number of nodes and the nesting depth,
refuse duplicate keys and explicit tags, and remember where in the file each document path starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from transforms.errors import DocPath, SpecProblem, describe_value

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 40

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
_SEQUENCE_TAGS = {None, "!", _CORE + "seq"}
_MAPPING_TAGS = {None, "!", _CORE + "map"}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlDocument:
    """The parsed data and, for each document path, the 1-based line where it starts."""

    data: Any
    lines: dict[DocPath, int]

    def line_of(self, path: DocPath) -> int:
        """Line of ``path``, or of its closest parent that exists (e.g. for a missing key)."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


class _EventReader:
    def __init__(self, text: str) -> None:
        self.loader = _Loader(text)
        self.lines: dict[DocPath, int] = {}
        self.nodes = 0
        self.current: DocPath = ()

    def read(self) -> Any:
        try:
            return self.read_stream()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = err.problem or err.context or "syntax error"
            raise SpecProblem(
                self.current, f"invalid YAML: {problem}; fix the syntax", line
            ) from None
        except yaml.YAMLError as err:
            raise SpecProblem(self.current, f"invalid YAML: {err}", 1) from None
        finally:
            self.loader.dispose()

    def read_stream(self) -> Any:
        self.loader.get_event()  # StreamStartEvent
        if self.loader.check_event(StreamEndEvent):
            return None
        self.loader.get_event()  # DocumentStartEvent
        data = self.read_node((), 0)
        self.loader.get_event()  # DocumentEndEvent
        if not self.loader.check_event(StreamEndEvent):
            line = self.loader.peek_event().start_mark.line + 1
            raise SpecProblem(
                (), "the file holds more than one YAML document; keep one per file", line
            )
        return data

    def read_node(self, path: DocPath, depth: int) -> Any:
        self.current = path
        event = self.loader.get_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            raise SpecProblem(
                path,
                f"YAML aliases (*{event.anchor}) are not allowed in mapping "
                "files; write the value out in full",
                line,
            )
        if event.anchor is not None:
            raise SpecProblem(
                path,
                f"YAML anchors (&{event.anchor}) are not allowed in mapping "
                "files; write the value out in full",
                line,
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SpecProblem(
                path,
                f"the file has more than {MAX_NODES} YAML values; split it into several mappings",
                line,
            )
        if depth > MAX_DEPTH:
            raise SpecProblem(path, f"values nest deeper than {MAX_DEPTH} levels", line)
        self.lines.setdefault(path, line)
        if isinstance(event, ScalarEvent):
            return self.scalar(event, path, line)
        if isinstance(event, SequenceStartEvent):
            self.check_tag(event.tag, _SEQUENCE_TAGS, path, line)
            items: list[Any] = []
            while not self.loader.check_event(SequenceEndEvent):
                items.append(self.read_node((*path, len(items)), depth + 1))
            self.loader.get_event()
            return items
        assert isinstance(event, MappingStartEvent)
        self.check_tag(event.tag, _MAPPING_TAGS, path, line)
        return self.mapping(path, depth)

    def mapping(self, path: DocPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        while not self.loader.check_event(MappingEndEvent):
            key_event = self.loader.peek_event()
            key_line = key_event.start_mark.line + 1
            if not isinstance(key_event, ScalarEvent):
                # An alias key gets its own clear message from read_node.
                if isinstance(key_event, AliasEvent):
                    self.read_node(path, depth + 1)
                raise SpecProblem(
                    path, "mapping keys must be plain values, not lists or mappings", key_line
                )
            key = self.read_node(path, depth + 1)
            key_path = (*path, key if isinstance(key, str) else str(key))
            if key in result:
                raise SpecProblem(
                    key_path,
                    f"duplicate key {key!r}; each key may appear once in a mapping",
                    key_line,
                )
            self.lines[key_path] = key_line
            result[key] = self.read_node(key_path, depth + 1)
        self.loader.get_event()
        return result

    def scalar(self, event: ScalarEvent, path: DocPath, line: int) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, event.value, event.implicit)
        self.check_tag(tag, _SCALAR_TAGS, path, line)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError):
            raise SpecProblem(
                path,
                f"cannot read {describe_value(event.value)} as "
                f"{tag.removeprefix(_CORE)}; quote it to keep it as text",
                line,
            ) from None

    def check_tag(self, tag: str | None, allowed: set[Any], path: DocPath, line: int) -> None:
        if tag not in allowed:
            raise SpecProblem(
                path, f"YAML tag {tag} is not allowed in mapping files; remove it", line
            )


def read_yaml(text: str) -> YamlDocument:
    """Parse one mapping document safely; raises SpecProblem (with a line) on anything unsafe."""
    reader = _EventReader(text)
    data = reader.read()
    return YamlDocument(data, reader.lines)

"""The one error type of the mapping engine: a mapping file that cannot be used."""

from __future__ import annotations

# A position inside the parsed document: keys and list indexes, e.g. ("fields", 2, "type").
DocPath = tuple[str | int, ...]
# A hostile file can put a 1 MiB value anywhere, and messages quote values: keep lines readable.
MAX_PROBLEM_CHARS = 600
MAX_PATH_PART_CHARS = 80


def shorten(text: str, limit: int) -> str:
    """``text`` if short enough, else its start and end around a note of what was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 2) // 2
    return f"{text[:keep]}...[{len(text) - 2 * keep} characters cut]...{text[-keep:]}"


def format_path(path: DocPath) -> str:
    """Render a path the way users write it: ``fields[2].type``; the root is ``document``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif len(part) > MAX_PATH_PART_CHARS or not part.isidentifier():
            # a key such as " " or "my key" must stay visible; a huge one is cut short
            text += f"[{shorten(repr(part), MAX_PATH_PART_CHARS)}]"
        else:
            text += f".{part}" if text else part
    return text or "document"


class MappingError(ValueError):
    """A mapping file is invalid; the message reads ``file:line: field.path: what is wrong``."""

    def __init__(
        self, filename: str, line: int, path: DocPath, problem: str, more: str = ""
    ) -> None:
        self.filename = filename
        self.line = line
        self.path = path
        self.problem = shorten(problem, MAX_PROBLEM_CHARS)
        limit = MAX_PROBLEM_CHARS + len(filename) + 2 * MAX_PATH_PART_CHARS
        more = "\n".join(shorten(extra, limit) for extra in more.split("\n"))
        super().__init__(f"{filename}:{line}: {format_path(path)}: {self.problem}{more}")


class SpecProblem(Exception):
    """Raised inside the loader with a document path; turned into a MappingError with a line."""

    def __init__(self, path: DocPath, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem
        self.line = line


class RecordProblem(ValueError):
    """One value of one record cannot be used; the engine rejects the record with this reason."""


def describe_value(value: object, limit: int = 80) -> str:
    """Type name plus a short preview, so a reason never carries a huge or nested value in full."""
    type_name = type(value).__name__
    if isinstance(value, dict):
        return f"{type_name} with {len(value)} keys"
    if isinstance(value, list | tuple | set | frozenset):
        return f"{type_name} of {len(value)} items"
    if isinstance(value, str) and len(value) > limit:
        return f"{type_name} of length {len(value)} {value[:limit]!r}..."
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type_name} {text}"

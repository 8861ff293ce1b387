"""The rooms of the code import one way (docs/architecture.md), read from the source: every
import counts, at module level, inside functions and under TYPE_CHECKING alike.

Where tests/test_layers.py checks what a module loads at run time, this checks what the code
says, so a lazy or type-only import that breaks the layering fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "services", "resources", "transforms")
# The resources/ root keeps what every room shares; `configurable` (the Dagster resources) is
# the one root module that wires rooms together.
ROOT_WIRING = "resources.configurable"

# room -> rooms (or third-party packages) it must never import
FORBIDDEN: dict[str, set[str]] = {
    "services": {"pipelines", "dagster", "sqlalchemy"},
    "transforms": {"pipelines", "services", "dagster", "sqlalchemy"},
    "resources": {"pipelines", "services", "transforms"},
    "resources.ratelimit": {
        "resources.connections",
        "resources.crm",
        "resources.tiktok",
        "resources.warehouse",
    },
    "resources.tiktok": {"resources.connections", "resources.crm", "resources.warehouse"},
    "resources.warehouse": {"resources.connections", "resources.crm", "resources.ratelimit"},
    "resources.connections": {"resources.crm", "resources.ratelimit"},
    "resources.crm": {"resources.ratelimit", "resources.tiktok", "resources.warehouse"},
    "resources(root)": {
        "resources.connections",
        "resources.crm",
        "resources.ratelimit",
        "resources.tiktok",
        "resources.warehouse",
    },
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(source: str) -> Iterable[str]:
    """What each import in `source` names (`from a import b`: `a.b`, a module or a name in it)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "resources":
        if len(parts) > 2 or (len(parts) == 2 and (ROOT / "resources" / parts[1]).is_dir()):
            return ".".join(parts[:2])
        return "resources(root)"
    return parts[0]


def _within(name: str, target: str) -> bool:
    if target == "resources(root)":
        return room(name) == target
    return name == target or name.startswith(target + ".")


def violations(sources: dict[str, str]) -> list[str]:
    found = []
    for module, source in sources.items():
        rules = FORBIDDEN.get(room(module), set()) | (
            FORBIDDEN["resources"] if module.startswith("resources") else set()
        )
        if module == ROOT_WIRING:
            rules = FORBIDDEN["resources"]
        for name in set(imported(source)):
            for target in rules:
                if _within(name, target) and room(name) != room(module):
                    found.append(f"{module} imports {name} ({room(module)} -> {target})")
    return sorted(found)


def cycles(sources: dict[str, str]) -> list[list[str]]:
    """Module import circles (strongly connected components), every import counted."""
    edges = {module: set() for module in sources}
    for module, source in sources.items():
        for name in imported(source):
            while name and name not in sources:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges[module].add(name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def project_sources() -> dict[str, str]:
    return {module: path.read_text() for module, path in modules().items()}


def test_the_checks_catch_a_wrong_way_import_and_a_type_only_circle():
    wrong = {
        "resources.warehouse.store": "import sqlalchemy\n",
        "resources.ratelimit.budget": "def f():\n    from resources.tiktok.client import X\n",
        "services.videos": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sqlalchemy import Table\n",
        "resources.settings": "from resources.connections.store import ConnectionStore\n",
    }
    assert violations(wrong) == [
        "resources.ratelimit.budget imports resources.tiktok.client.X "
        "(resources.ratelimit -> resources.tiktok)",
        "resources.settings imports resources.connections.store.ConnectionStore "
        "(resources(root) -> resources.connections)",
        "services.videos imports sqlalchemy.Table (services -> sqlalchemy)",
    ]
    circle = {
        "services.a": "from services.b import B\n",
        "services.b": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from services.a import A\n",
    }
    assert cycles(circle) == [["services.a", "services.b"]]


def test_every_room_imports_only_the_way_the_architecture_allows():
    assert violations(project_sources()) == []


def test_no_module_import_circle_type_only_imports_included():
    assert cycles(project_sources()) == []


def test_the_resources_root_keeps_only_what_the_rooms_share():
    root_modules = sorted(p.stem for p in (ROOT / "resources").glob("*.py"))
    assert len(root_modules) <= 8, root_modules


def test_no_production_module_is_over_350_lines():
    long = {
        module: lines
        for module, path in modules().items()
        if (lines := len(path.read_text().splitlines())) > 350
    }
    assert long == {}

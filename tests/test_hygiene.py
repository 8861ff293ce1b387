"""Habits the test suite keeps so that one test never breaks another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
# Contexts that open a Dagster instance of their own (from the given instance's ref) and set
# Dagster's defs-state context variable until they exit.
OPENS_AN_INSTANCE = {"build_schedule_context", "build_sensor_context"}


def _unclosed_contexts(source: str) -> list[int]:
    tree = ast.parse(source)
    in_with = {
        id(item.context_expr)
        for node in ast.walk(tree)
        if isinstance(node, ast.With)
        for item in node.items
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) in OPENS_AN_INSTANCE
        and id(node) not in in_with
    ]


def test_the_check_finds_a_context_left_open():
    assert _unclosed_contexts("context = dg.build_sensor_context(instance=i)\n") == [1]
    assert _unclosed_contexts("with dg.build_sensor_context(instance=i) as c:\n    pass\n") == []


def test_schedule_and_sensor_contexts_are_closed_by_the_test_that_opens_them():
    """Left open, the garbage collector closes one during some later test, and resets Dagster's
    defs-state variable to the storage of an instance that test already dropped: that later
    test's definitions load then fails with "Attempted to resolve undefined DagsterInstance
    weakref" (a flaky failure seen in CI, once in a few full runs)."""
    unclosed = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in _unclosed_contexts(path.read_text())
    ]
    assert unclosed == [], f"use these contexts in a `with` block: {unclosed}"

"""Computed-field expressions: tiny arithmetic, parsed with ast and walked, never eval'd."""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transforms.casts import to_float, to_integer
from transforms.errors import RecordProblem, describe_value
from transforms.field_transforms import suggest

# name -> (fewest, most) arguments; None: no upper bound.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "coalesce": (1, None),
    "max": (2, None),
    "min": (2, None),
    "round": (1, 2),
}
MAX_EXPRESSION_LENGTH = 1000
_MAX_DEPTH = 32
# round(x, n) with a huge n makes Python build enormous powers of ten.
_MAX_ROUND_DIGITS = 20
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_FORBIDDEN_NAMES = {
    ast.Lambda: "lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Subscript: "indexing",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.JoinedStr: "an f-string",
}


class ExpressionProblem(ValueError):
    """An expression in a mapping file is not valid; the loader adds the file position."""


@dataclass(frozen=True)
class Expression:
    """A checked expression plus the source fields it reads from the record and ``previous``."""

    text: str
    tree: ast.expr
    names: frozenset[str]
    previous_names: frozenset[str]


def _where(node: ast.AST) -> str:
    return f" at column {getattr(node, 'col_offset', 0) + 1}"


class _Checker:
    def __init__(self, source_fields: Mapping[str, str | None]) -> None:
        self.source_fields = source_fields
        self.names: set[str] = set()
        self.previous_names: set[str] = set()

    def field(self, name: str, node: ast.AST, prefix: str = "") -> str:
        if name not in self.source_fields:
            raise ExpressionProblem(
                f"unknown source field {prefix}{name!r}{_where(node)}"
                f"{suggest(name, list(self.source_fields))}"
            )
        return name

    def check(self, node: ast.AST, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ExpressionProblem(
                f"expression nests deeper than {_MAX_DEPTH} levels; simplify it"
            )
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ExpressionProblem(
                    f"only numbers may be written literally, not "
                    f"{describe_value(node.value)}{_where(node)}"
                )
        elif isinstance(node, ast.Name):
            self.check_name(node)
        elif isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "previous"):
                raise ExpressionProblem(
                    f"attribute access is not allowed{_where(node)}; "
                    "only previous.<field> reads the previous snapshot"
                )
            self.previous_names.add(self.field(node.attr, node, "previous."))
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPERATORS:
                raise ExpressionProblem(
                    f"operator {type(node.op).__name__} is not allowed{_where(node)};"
                    " use + - * / and the functions " + ", ".join(FUNCTIONS)
                )
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise ExpressionProblem(
                    f"operator {type(node.op).__name__} is not allowed{_where(node)}"
                )
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.Call):
            self.check_call(node, depth)
        else:
            what = _FORBIDDEN_NAMES.get(type(node), type(node).__name__)
            raise ExpressionProblem(
                f"{what} is not allowed in expressions{_where(node)}; use numbers, "
                "source fields, previous.<field>, + - * / and " + ", ".join(FUNCTIONS)
            )

    def check_name(self, node: ast.Name) -> None:
        if node.id == "previous":
            raise ExpressionProblem(
                f"previous needs a field{_where(node)}, e.g. previous.follower_count"
            )
        if node.id in FUNCTIONS:
            raise ExpressionProblem(
                f"{node.id} is a function{_where(node)}; call it: {node.id}(...)"
            )
        self.names.add(self.field(node.id, node))

    def check_call(self, node: ast.Call, depth: int) -> None:
        if not isinstance(node.func, ast.Name):
            # Reports lambdas and attribute calls (os.system) by what they are.
            self.check(node.func, depth + 1)
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionProblem(
                f"calling {called!r} is not allowed{_where(node)}; "
                "the functions are " + ", ".join(FUNCTIONS)
            )
        name = node.func.id
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionProblem(f"{name}() takes plain positional arguments only{_where(node)}")
        fewest, most = FUNCTIONS[name]
        if len(node.args) < fewest or (most is not None and len(node.args) > most):
            expected = f"{fewest}" if fewest == most else f"{fewest} to {most or 'any number of'}"
            raise ExpressionProblem(
                f"{name}() takes {expected} arguments, got {len(node.args)}{_where(node)}"
            )
        for arg in node.args:
            self.check(arg, depth + 1)


def compile_expression(text: str, source_fields: Mapping[str, str | None]) -> Expression:
    """Parse and check an expression against the mapping's source fields."""
    if not text.strip():
        raise ExpressionProblem("expression is empty; write e.g. like_count / view_count")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionProblem(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ExpressionProblem(
            f"not a valid expression: {err.msg} at column {err.offset}"
        ) from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise ExpressionProblem(f"not a valid expression: {err}") from None
    checker = _Checker(source_fields)
    checker.check(tree.body, 0)
    return Expression(text, tree.body, frozenset(checker.names), frozenset(checker.previous_names))


def _number(value: Any, label: str) -> int | float | None:
    if value is None:
        return None
    try:
        return to_integer(value)
    except RecordProblem:
        pass
    try:
        return to_float(value)
    except RecordProblem:
        raise RecordProblem(f"{label} is {describe_value(value)}, expected a number") from None


def _call(name: str, args: list[int | float | None]) -> int | float | None:
    if any(arg is None for arg in args):
        return None
    numbers: list[int | float] = [arg for arg in args if arg is not None]
    if name == "abs":
        return abs(numbers[0])
    if name == "min":
        return min(numbers)
    if name == "max":
        return max(numbers)
    if len(numbers) == 1:
        return round(numbers[0])
    digits = numbers[1]
    if not float(digits).is_integer() or abs(digits) > _MAX_ROUND_DIGITS:
        raise RecordProblem(f"round() digits must be a whole number within ±{_MAX_ROUND_DIGITS}")
    return round(numbers[0], int(digits))


class _Evaluator:
    def __init__(self, record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
        self.record = record
        self.previous = previous

    def value(self, node: ast.expr) -> int | float | None:
        if isinstance(node, ast.Constant):
            constant: int | float = node.value
            return constant
        if isinstance(node, ast.Name):
            return _number(self.record.get(node.id), node.id)
        if isinstance(node, ast.Attribute):
            previous = self.previous.get(node.attr) if self.previous is not None else None
            return _number(previous, f"previous.{node.attr}")
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            if operand is None:
                return None
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # checked at load
        if node.func.id == "coalesce":
            for arg in node.args:
                result = self.value(arg)
                if result is not None:
                    return result
            return None
        return _call(node.func.id, [self.value(arg) for arg in node.args])

    def binary(self, node: ast.BinOp) -> int | float | None:
        left, right = self.value(node.left), self.value(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        # Division by zero is "no rate yet" (a video with no views), not a broken record.
        return None if right == 0 else left / right


def evaluate(
    expression: Expression, record: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> int | float | None:
    """Value for one record; null operands give null; RecordProblem if a value is unusable."""
    try:
        result = _Evaluator(record, previous).value(expression.tree)
    except (OverflowError, ValueError) as err:
        if isinstance(err, RecordProblem):
            raise
        raise RecordProblem(f"expression {expression.text!r} overflowed: {err}") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise RecordProblem(f"expression {expression.text!r} gave a non-finite number")
    return result

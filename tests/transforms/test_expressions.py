"""Computed-field expressions: checked at load against the source's fields, then evaluated by
walking the AST (precedence, null propagation, division by zero, previous.*, the functions),
and every construct outside the whitelist refused with its column."""

from __future__ import annotations

from typing import Any

import pytest

from tests.transforms.builders import ALL_SCOPES, mapping_text, video
from transforms import MappingError, apply_mapping, parse_mapping
from transforms.errors import RecordProblem
from transforms.expressions import ExpressionProblem, compile_expression, evaluate
from transforms.source_fields import SOURCE_FIELD_SCOPES

VIDEO_FIELDS = SOURCE_FIELD_SCOPES["video"]


def _eval(text: str, previous: dict[str, Any] | None = None, **record: Any) -> Any:
    return evaluate(compile_expression(text, VIDEO_FIELDS), record, previous)


VALUES = [
    # literals and precedence: * and / bind tighter than + and -
    ("1 + 2 * 3", {}, 7),
    ("(1 + 2) * 3", {}, 9),
    ("10 - 4 - 3", {}, 3),
    ("8 / 4 / 2", {}, 1.0),
    ("-like_count + 5", {"like_count": 2}, 3),
    ("+like_count", {"like_count": 2}, 2),
    ("-(like_count - 10)", {"like_count": 4}, 6),
    # the engagement rate of the shipped mappings
    (
        "(like_count + comment_count + share_count) / view_count",
        {"like_count": 90, "comment_count": 6, "share_count": 4, "view_count": 1000},
        0.1,
    ),
    # numeric strings in records count as numbers
    ("view_count * 2", {"view_count": "21"}, 42),
    ("view_count * 2", {"view_count": "1.5"}, 3.0),
    # any null operand gives null, including a missing field
    ("like_count + 1", {"like_count": None}, None),
    ("like_count + 1", {}, None),
    ("-like_count", {}, None),
    ("abs(like_count)", {}, None),
    ("round(like_count, 2)", {}, None),
    ("min(like_count, 3)", {}, None),
    # division by zero gives null, not an error
    ("like_count / view_count", {"like_count": 5, "view_count": 0}, None),
    ("like_count / 0.0", {"like_count": 5}, None),
    # coalesce: first non-null argument, null when all are null
    ("coalesce(like_count, comment_count, 0)", {"comment_count": 7}, 7),
    ("coalesce(like_count, comment_count)", {}, None),
    ("coalesce(view_count) / 2", {"view_count": 8}, 4.0),
    # round with and without digits, min, max, abs
    ("round(like_count / 3, 2)", {"like_count": 10}, 3.33),
    ("round(like_count / 4)", {"like_count": 10}, 2),
    ("min(like_count, comment_count, 3)", {"like_count": 10, "comment_count": 5}, 3),
    ("max(like_count, comment_count)", {"like_count": 10, "comment_count": 50}, 50),
    ("abs(like_count - comment_count)", {"like_count": 10, "comment_count": 50}, 40),
]


@pytest.mark.parametrize(("text", "record", "expected"), VALUES)
def test_expression_values(text: str, record: dict[str, Any], expected: Any) -> None:
    assert _eval(text, **record) == expected


def test_previous_reads_the_previous_snapshot() -> None:
    previous = {"view_count": 150}
    assert _eval("view_count - previous.view_count", previous, view_count=200) == 50


def test_previous_absent_gives_null() -> None:
    assert _eval("view_count - previous.view_count", None, view_count=200) is None
    assert _eval("view_count - previous.view_count", {}, view_count=200) is None


def test_collected_names() -> None:
    expression = compile_expression("like_count / coalesce(previous.view_count, 1)", VIDEO_FIELDS)
    assert expression.names == {"like_count"}
    assert expression.previous_names == {"view_count"}


UNUSABLE = [
    # non-numeric operands reject the record (they are not silently null)
    ("like_count + 1", {"like_count": "many"}, "like_count is str 'many', expected a number"),
    ("like_count + 1", {"like_count": True}, "like_count is bool True"),
    ("like_count + 1", {"like_count": [1]}, "like_count is list"),
    # round digits are bounded so round() cannot build enormous numbers
    ("round(like_count, view_count)", {"like_count": 1, "view_count": 10**9}, "digits"),
    # results that are not finite
    ("like_count * 10.0", {"like_count": 1e308}, "non-finite"),
    # integer division results too large for a float
    ("like_count / 3", {"like_count": 10**400}, "overflowed"),
]


@pytest.mark.parametrize(("text", "record", "reason"), UNUSABLE)
def test_unusable_values_raise_record_problems(
    text: str, record: dict[str, Any], reason: str
) -> None:
    with pytest.raises(RecordProblem) as caught:
        _eval(text, **record)
    assert reason in str(caught.value)


REFUSED = [
    # attribute access other than previous.<field>
    ("like_count.real", "attribute access is not allowed"),
    ("previous.view_count.real", "attribute access is not allowed"),
    ("().__class__", "attribute access is not allowed"),
    # previous alone or with an unknown field
    ("previous", "previous needs a field"),
    ("previous.views", "unknown source field previous.'views'"),
    # unknown names, with a suggestion
    (
        "likes_count + 1",
        "unknown source field 'likes_count' at column 1 (did you mean 'like_count'?)",
    ),
    ("os", "unknown source field 'os'"),
    # calls to anything outside the whitelist
    ("__import__('os')", "calling '__import__' is not allowed"),
    ("eval('1')", "calling 'eval' is not allowed"),
    ("len(like_count)", "calling 'len' is not allowed"),
    ("os.system('x')", "attribute access is not allowed"),
    ("(lambda: 1)()", "lambda is not allowed"),
    # whitelisted functions: positional arguments, right arity, called not named
    ("round(like_count, ndigits=2)", "plain positional arguments"),
    ("max(*like_count)", "plain positional arguments"),
    ("abs(like_count, 1)", "abs() takes 1 arguments"),
    ("min(like_count)", "min() takes 2 to any number of arguments"),
    ("round", "round is a function"),
    # constructs that are not arithmetic
    ("lambda: 1", "lambda is not allowed"),
    ("[x for x in like_count]", "a list comprehension is not allowed"),
    ("{x: 1 for x in like_count}", "a dict comprehension is not allowed"),
    ("(x for x in like_count)", "a generator expression is not allowed"),
    ("like_count[0]", "indexing is not allowed"),
    ("like_count > 1", "a comparison is not allowed"),
    ("like_count and 1", "and/or is not allowed"),
    ("1 if like_count else 2", "a conditional expression is not allowed"),
    ("(x := 1)", "an assignment expression is not allowed"),
    ("f'{like_count}'", "an f-string is not allowed"),
    ("not like_count", "operator Not is not allowed"),
    # operators beyond + - * /
    ("like_count ** 2", "operator Pow is not allowed"),
    ("like_count // 2", "operator FloorDiv is not allowed"),
    ("like_count % 2", "operator Mod is not allowed"),
    # literals other than numbers
    ("'text'", "only numbers may be written literally"),
    ("True + 1", "only numbers may be written literally"),
    ("None", "only numbers may be written literally"),
    # syntax, emptiness and size
    ("like_count +", "not a valid expression"),
    ("import os", "not a valid expression"),
    ("   ", "expression is empty"),
    ("+".join(["like_count"] * 200), "longer than 1000 characters"),
    ("abs(" * 40 + "like_count" + ")" * 40, "nests deeper"),
    ("-" * 40 + "like_count", "nests deeper"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_refused_constructs(text: str, message: str) -> None:
    with pytest.raises(ExpressionProblem) as caught:
        compile_expression(text, VIDEO_FIELDS)
    assert message in str(caught.value)


def test_expression_errors_carry_file_line_and_field() -> None:
    text = mapping_text(
        "",
        source="video",
        obj="crm_videos",
        computed="  - target: rate\n    type: float\n    expression: 'like_count ** 2'\n",
    )
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "videos.yaml")
    assert str(caught.value).startswith("videos.yaml:16: computed[0].expression: operator Pow")


def test_computed_fields_in_apply_mapping() -> None:
    computed = (
        "  - target: rate\n    type: float\n"
        "    expression: round((like_count + comment_count + share_count) / view_count, 4)\n"
        "  - target: growth\n    type: integer\n    expression: view_count - previous.view_count\n"
    )
    text = mapping_text("", source="video", obj="crm_videos", computed=computed)
    mapping = parse_mapping(text)
    records = [video(), video(id="2", view_count=0)]
    previous = {(video()["id"],): video(view_count=15000)}
    result = apply_mapping(mapping, records, ALL_SCOPES, previous)
    assert result.records == [
        {"id_out": video()["id"], "rate": 0.05, "growth": 5000},
        {"id_out": "2", "rate": None, "growth": None},
    ]


def test_computed_cast_failure_rejects_the_record() -> None:
    computed = "  - target: half\n    type: integer\n    expression: view_count / 3\n"
    text = mapping_text("", source="video", obj="crm_videos", computed=computed)
    result = apply_mapping(parse_mapping(text), [video(view_count=10)], ALL_SCOPES)
    assert result.records == []
    (rejected,) = result.rejected
    assert rejected.field == "half"
    assert "cannot cast float 3.33" in rejected.reason
    assert rejected.key == (video()["id"],)
